#!/usr/bin/env bash
# Bad input the command must refuse with one clear line and a non-zero exit, without a crash and
# without touching or half-writing an output file: data of the wrong width in every command that
# predicts, unlabelled data where labels are needed, outputs that are inputs, devices as outputs,
# options given twice or out of range, damaged gzip and metadata values.
# usage: cli_robust.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"

run "train map" "$BNN" train --data moons --epochs 3 --batch-size 64 -q -o "$T/map.safetensors"
run "train sine" "$BNN" train --data sine-gap --epochs 3 --batch-size 16 --noise 0.1 -q -o "$T/sine.safetensors"
# A 5-input classifier: the width every 2-input dataset below does not have.
python3 - "$T/wide.csv" <<'EOF'
import random, sys
random.seed(1)
with open(sys.argv[1], "w") as f:
    for r in range(40):
        f.write(",".join("%.3f" % random.random() for _ in range(5)) + ",%d\n" % (r % 2))
EOF
run "train wide" "$BNN" train --data "csv:$T/wide.csv" --epochs 1 -q -o "$T/wide.safetensors"

# --- the data's width against the model's, in every command that predicts
expect_usage "compare: data narrower than the model" "features" "$BNN" compare -m "$T/wide.safetensors" --data moons
expect_usage "compare: a second model of another width" "features" "$BNN" compare -m "$T/map.safetensors" -m "$T/wide.safetensors"
expect_usage "compare: ood of another width" "features" "$BNN" compare -m "$T/map.safetensors" --ood noise:5:10
# A CSV --ood file's columns are all read: neither the inputs nor the inputs and a label
printf '1,2,3,0\n2,3,4,1\n' >"$T/four.csv"
printf '0.1,0.2,0\n0.3,0.4,1\n0.5,0.1,2\n' >"$T/three.csv"
expect_usage "eval: ood CSV of another width" "four.csv has 4 columns; as --ood data it needs the model's 2 inputs, with or without a label column" "$BNN" eval -m "$T/map.safetensors" --ood "csv:$T/four.csv"
# --link-samples on a regression IVON model: it has no linearised predictive (not "closed form")
run "train ivon sine" "$BNN" train --data sine-gap --method ivon --epochs 2 --batch-size 16 -q -o "$T/ivon_sine.safetensors"
expect_usage "eval --link-samples, ivon regression" "is for a Laplace or VON posterior's linearised predictive; .*ivon_sine.safetensors holds a diagonal Gaussian posterior" "$BNN" eval -m "$T/ivon_sine.safetensors" --link-samples 10
expect_usage "plot: regression data for a classifier" "map.safetensors is a classification model but sine-gap is regression data" "$BNN" plot -m "$T/map.safetensors" --data sine-gap -o "$T/never.svg"
expect_usage "plot: classification data for a regression model" "sine.safetensors is a regression model but moons is classification data" "$BNN" plot -m "$T/sine.safetensors" --data moons -o "$T/never.svg"
expect_usage "plot: CSV data of another width" "four.csv has 3 features but model" "$BNN" plot -m "$T/map.safetensors" --data "csv:$T/four.csv" -o "$T/never.svg"
expect_usage "laplace: data of more classes" "three.csv has 3 classes but model .* predicts 2" "$BNN" laplace -m "$T/map.safetensors" --data "csv:$T/three.csv" -o "$T/never.st"
expect_usage "calibrate: regression data for a classifier" "map.safetensors is a classification model but sine-gap is regression data" "$BNN" calibrate -m "$T/map.safetensors" --data sine-gap -o "$T/never.st"

# --- data without labels: predicted on and used as OOD data, never trained or scored on
expect_usage "train on unlabelled noise" "no labels" "$BNN" train --data noise:2:50 -q -o "$T/never.safetensors"
expect_usage "eval against noise" "no labels" "$BNN" eval -m "$T/map.safetensors" --data noise:2:50
expect_usage "calibrate on noise" "no labels" "$BNN" calibrate -m "$T/map.safetensors" --data noise:2:50 -o "$T/never.safetensors"
# A model of one task on data of the other does not fit the model: a usage error (it was exit 1).
expect_usage "eval a classifier on regression data" "is a classification model but sine-gap is regression data" "$BNN" eval -m "$T/map.safetensors" --data sine-gap
printf '0.1,0.2,0\n0.3,0.4,0\n0.5,0.1,0\n' >"$T/oneclass.csv"
expect_fail "train on one class" "one class" "$BNN" train --data "csv:$T/oneclass.csv" -q -o "$T/never.safetensors"

# --- outputs: never an input, a directory or a path in a missing directory; devices in place
cp "$T/map.safetensors" "$T/keep.safetensors"
expect_fail "predict over its model" "is the input" "$BNN" predict -m "$T/keep.safetensors" --data moons -o "$T/keep.safetensors"
expect_fail "eval --json over its model" "is the input" "$BNN" eval -m "$T/keep.safetensors" --json "$T/keep.safetensors"
cp "$T/wide.csv" "$T/data.csv"
expect_fail "train over its data" "is the input" "$BNN" train --data "csv:$T/data.csv" --epochs 1 -q -o "$T/data.csv"
cmp -s "$T/map.safetensors" "$T/keep.safetensors" && cmp -s "$T/wide.csv" "$T/data.csv" && ok || bad "an input was overwritten"
# fmnist's own files are the command's data too (an output over one replaced the data set: as
# root, the system's copy): each split's images and labels, compressed or not, also as --ood.
mkdir -p "$T/fm"
for s in train t10k; do # 10 blank images with labels 0 .. 9: valid, so loading them passes
  { printf '\x00\x00\x08\x03\x00\x00\x00\x0a\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c 7840 /dev/zero; } >"$T/fm/$s-images-idx3-ubyte"
  printf '\x00\x00\x08\x01\x00\x00\x00\x0a\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09' >"$T/fm/$s-labels-idx1-ubyte"
done
gzip "$T/fm/train-images-idx3-ubyte" "$T/fm/t10k-labels-idx1-ubyte"
cp -r "$T/fm" "$T/fm.orig"
BNN_FMNIST_DIR="$T/fm" expect_usage "train -o over fmnist's images" "the output .*train-images-idx3-ubyte.gz is the input" "$BNN" train --data fmnist -q -o "$T/fm/train-images-idx3-ubyte.gz"
BNN_FMNIST_DIR="$T/fm" expect_usage "eval --json over fmnist's test labels" "t10k-labels-idx1-ubyte.gz is the input" "$BNN" eval -m "$T/map.safetensors" --data fmnist --json "$T/fm/t10k-labels-idx1-ubyte.gz"
BNN_FMNIST_DIR="$T/fm" expect_usage "eval --json over --ood fmnist:flip's file" "t10k-images-idx3-ubyte is the input" "$BNN" eval -m "$T/map.safetensors" --ood fmnist:flip --json "$T/fm/t10k-images-idx3-ubyte"
BNN_FMNIST_DIR="$T/fm" expect_usage "predict -o over fmnist's training labels" "train-labels-idx1-ubyte is the input" "$BNN" predict -m "$T/map.safetensors" --data fmnist -o "$T/fm/train-labels-idx1-ubyte"
diff -r "$T/fm" "$T/fm.orig" >/dev/null && ok || bad "an fmnist file was overwritten"
# A command that prints its report on stdout cannot also save its file there (the file's bytes
# followed the table: unreadable, with exit 0); /dev/null for both is fine.
for c in "laplace -m $T/map.safetensors" "von -m $T/map.safetensors --steps 1" "calibrate -m $T/map.safetensors --data moons"; do
  # shellcheck disable=SC2086  # c is a list of words
  expect_usage "${c%% *} -o -" "-o - is standard output, where ${c%% *} prints its report" "$BNN" $c -o -
done
expect_usage "laplace -o the file stdout goes to" "is standard output" sh -c '"$1" laplace -m "$2" -o "$3" >"$3"' sh "$BNN" "$T/map.safetensors" "$T/la_out.st"
[ ! -s "$T/la_out.st" ] && ok || bad "laplace wrote into the file stdout goes to"
run "laplace -o /dev/null >/dev/null" sh -c '"$1" laplace -q -m "$2" -o /dev/null >/dev/null' sh "$BNN" "$T/map.safetensors"
expect_fail "train into a missing directory" "does not exist" "$BNN" train --data moons --epochs 200 -q -o "$T/no/such/dir/m.safetensors"
expect_fail "output is a directory" "directory" "$BNN" predict -m "$T/map.safetensors" --data moons -o "$T"
run "predict to /dev/null" "$BNN" predict -m "$T/map.safetensors" --data moons -o /dev/null
[ -c /dev/null ] && ok || bad "/dev/null is no longer a device"
run "eval --json to /dev/stdout" "$BNN" eval -m "$T/map.safetensors" --json /dev/stdout
# The table first, then the whole report after it (not written over the table's start).
head -1 "$T/out" | grep -q '^model' && sed -n '/^{/,$p' "$T/out" | python3 -c 'import json, sys; json.load(sys.stdin)' \
  && ok || bad "the table, then the JSON report, on stdout"
echo "earlier line" >"$T/all.csv"
"$BNN" predict -m "$T/map.safetensors" --data moons -o /dev/stdout >>"$T/all.csv" 2>/dev/null
[ "$(head -1 "$T/all.csv")" = "earlier line" ] && [ "$(wc -l <"$T/all.csv")" -eq 502 ] && ok || bad "-o /dev/stdout appends to a redirected stdout"
# The same for /dev/stderr redirected to a file: the report goes after what the file holds, and the
# file is not replaced.
echo "earlier line" >"$T/err_all.txt"
"$BNN" eval -m "$T/map.safetensors" --json /dev/stderr >/dev/null 2>>"$T/err_all.txt"
[ "$(head -1 "$T/err_all.txt")" = "earlier line" ] &&
  sed -n '/^{/,$p' "$T/err_all.txt" | python3 -c 'import json, sys; json.load(sys.stdin)' && ok ||
  bad "--json /dev/stderr appends to a redirected stderr: $(head -3 "$T/err_all.txt")"
# A link to a file stays a link; its target gets the output.
echo old >"$T/target.csv"
ln -sf target.csv "$T/link.csv"
run "predict through a link" "$BNN" predict -m "$T/map.safetensors" --data moons -o "$T/link.csv"
[ -L "$T/link.csv" ] && [ "$(head -1 "$T/target.csv")" = "p_0,p_1,pred,max_prob,entropy,mutual_info" ] && ok || bad "a symlink output stays a link to the new file"
# Inputs that come from the model's metadata are protected too; a model may be updated in place.
cp "$T/wide.csv" "$T/d.csv"
# A CSV pair's test file is read before training: missing, or of another width, it is refused.
expect_fail "train, a missing test file" "absent.csv: cannot open" "$BNN" train --data "csv:$T/d.csv,$T/absent.csv" -q -o "$T/never.safetensors"
printf '1,2,0\n3,4,1\n' >"$T/narrow.csv"
expect_fail "train, a test file of another width" "the test file has 2 features but the training file has" "$BNN" train --data "csv:$T/d.csv,$T/narrow.csv" -q -o "$T/never.safetensors"
printf '0.1,0.2,0.3,0.4,0.5,7\n' >"$T/k8.csv"
expect_fail "train, a test file with more classes" "the test file has 8 classes but the training file has 2" "$BNN" train --data "csv:$T/d.csv,$T/k8.csv" -q -o "$T/never.safetensors"
# Training state beyond the memory bnn may use is refused up front with the size. mfvi keeps
# more arrays than adamw (and its workspace): the same limit passes one and stops the other.
# adamw's 206 KiB: 4 arrays of 2802 floats, a batch of 128 rows' activations (layers of 50, 50,
# 50, 50 and 2 outputs, two gradient buffers of 50), the batch's copies and the permutation.
expect_fail "mfvi beyond BNN_MEMORY_LIMIT" "mfvi training of 2802 parameters needs about 334 KiB .*saving), more than BNN_MEMORY_LIMIT's 244 KiB" \
  env BNN_MEMORY_LIMIT=250000 "$BNN" train --data moons --method mfvi --epochs 1 -q -o "$T/never.safetensors"
run "adamw within BNN_MEMORY_LIMIT" env BNN_MEMORY_LIMIT=250000 "$BNN" train --data moons --epochs 1 -q -o "$T/limited.safetensors"
expect_fail "adamw beyond BNN_MEMORY_LIMIT" "adamw training of 2802 parameters needs about 206 KiB" \
  env BNN_MEMORY_LIMIT=200000 "$BNN" train --data moons --epochs 1 -q -o "$T/never.safetensors"
# A layer wide enough that a batch's activations (32 GiB), not the weights and the optimizer's
# arrays (0.75 GiB), exceed the memory: refused
# with the size instead of being killed while the buffers are zeroed.
expect_fail "wide layer beyond the memory" "adamw training of 50331648 parameters needs about 32.8 GiB" \
  env BNN_MEMORY_LIMIT=4G "$BNN" train --data moons --model mlp:2-16777216 --epochs 1 -q -o "$T/never.safetensors"
# The limit's unit in either case, with B or iB after it: one size (4 GiB) each way
for lim in 4g 4GB 4GiB 4096m; do
  expect_fail "BNN_MEMORY_LIMIT=$lim" "needs about 32.8 GiB .*more than BNN_MEMORY_LIMIT's 4 GiB of memory" \
    env BNN_MEMORY_LIMIT=$lim "$BNN" train --data moons --model mlp:2-16777216 --epochs 1 -q -o "$T/never.safetensors"
done
expect_fail "BNN_MEMORY_LIMIT=4Q" "BNN_MEMORY_LIMIT is '4Q', not a size" \
  env BNN_MEMORY_LIMIT=4Q "$BNN" train --data moons --epochs 1 -q -o "$T/never.safetensors"
# Weights alone beyond the memory (a model of 10^10 parameters): their size, not "cannot allocate".
expect_fail "weights beyond the memory" "model mlp:2-100000-100000-2 has 10000600002 parameters, whose weights alone need 37.3 GiB, more than BNN_MEMORY_LIMIT's 30 GiB" \
  env BNN_MEMORY_LIMIT=30G "$BNN" train --data moons --model mlp:2-100000-100000-2 --epochs 1 -q -o "$T/never.safetensors"
run "train 100000 hidden units" "$BNN" train --data moons --model mlp:2-100000-2 --epochs 1 -q -o "$T/h100k.safetensors"
expect_fail "a batch beyond the memory in prediction" "a batch of 256 rows through model mlp:2-100000-2 needs about 391 MiB for its activations, more than BNN_MEMORY_LIMIT's 64 MiB" \
  env BNN_MEMORY_LIMIT=64M "$BNN" eval -m "$T/h100k.safetensors"
expect_fail "BNN_MEMORY_LIMIT that is no size" "BNN_MEMORY_LIMIT is 'lots', not a size" env BNN_MEMORY_LIMIT=lots "$BNN" train --data moons --epochs 1 -q -o "$T/never.safetensors"
run "checkpoint of CSV data" "$BNN" train --data "csv:$T/d.csv" --epochs 2 --stop-after 1 --checkpoint "$T/dck.safetensors" -q
expect_fail "resume over its data, one line" "the output .*d.csv is the input" "$BNN" train --resume "$T/dck.safetensors" -o "$T/d.csv"
# The wrong kind of file, or data of the other task, is a usage error (as they are elsewhere).
expect_usage "resume a model file" "sine.safetensors is a model file, not a checkpoint (save one with --checkpoint)" "$BNN" train --resume "$T/sine.safetensors" -q -o "$T/never.safetensors"
expect_usage "resume on data of the other task" "dck.safetensors is a classification model but sine-gap is regression data" "$BNN" train --resume "$T/dck.safetensors" --data sine-gap -q -o "$T/never.safetensors"
run "checkpoint of a regression" "$BNN" train --data sine-gap --epochs 2 --stop-after 1 --checkpoint "$T/rck.safetensors" -q
expect_usage "resume a regression on classification data" "rck.safetensors is a regression model but moons is classification data" "$BNN" train --resume "$T/rck.safetensors" --data moons -q -o "$T/never.safetensors"
# A calibrated copy of a checkpoint is not resumed (the temperature fits the weights as they were)
python3 "$(dirname "$0")/st_meta.py" "$T/dck.safetensors" "$T/dck_cal.safetensors" bnn.temperature 1.5
expect_usage "resume a calibrated checkpoint" "dck_cal.safetensors is a calibrated copy (bnn.temperature)" "$BNN" train --resume "$T/dck_cal.safetensors" -q -o "$T/never.safetensors"
# A classifier's checkpoint whose noise σ was damaged is refused on resume (it trained and saved a
# model with bnn.sigma -1 that every other command then refused).
python3 "$(dirname "$0")/st_meta.py" "$T/dck.safetensors" "$T/dck_s.safetensors" bnn.sigma -1
expect_fail "resume with a negative sigma" "noise scale sigma must be positive and finite (got -1)" "$BNN" train --resume "$T/dck_s.safetensors" -q -o "$T/never.safetensors"
cmp -s "$T/wide.csv" "$T/d.csv" && ok || bad "a refused resume changed its data"
run "train with a hold-out" "$BNN" train --data "csv:$T/d.csv" --epochs 1 --holdout 10 -q -o "$T/dh.safetensors"
expect_fail "calibrate over the recorded data" "is the input" "$BNN" calibrate -m "$T/dh.safetensors" -o "$T/d.csv"
expect_fail "eval --json over its --data" "is the input" "$BNN" eval -m "$T/dh.safetensors" --data "csv:$T/d.csv" --json "$T/d.csv"
cmp -s "$T/wide.csv" "$T/d.csv" && ok || bad "the data file was overwritten"
chmod 640 "$T/dh.safetensors"
run "calibrate in place" "$BNN" calibrate -m "$T/dh.safetensors" -o "$T/dh.safetensors"
# The updated file keeps its permissions (it became 0644, the umask's).
[ "$(stat -c %a "$T/dh.safetensors")" = 640 ] && ok || bad "an updated file's mode: $(stat -c %a "$T/dh.safetensors")"
run "eval the calibrated model" "$BNN" eval -m "$T/dh.safetensors"
grep -q "temperature" "$T/out" && ok || bad "the model file was updated in place"
# A temperature that makes every prediction certain: each wrong one's true class has probability
# 0 in double, but its log-probability, of the order of -1e30, is finite, and so is the NLL (it was
# +inf, null in the report).
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/tiny_t.safetensors" bnn.temperature 1e-30
run "eval with certain predictions" "$BNN" eval -m "$T/tiny_t.safetensors" --json "$T/inf.json"
grep -q "^nll        [0-9.]*e+[0-9]*$" "$T/out" && ok || bad "a huge NLL in the table: $(grep ^nll "$T/out")"
python3 -c "
import json, math, sys
d = json.load(open(sys.argv[1]))
sys.exit(not (d['accuracy'] < 1 and isinstance(d['nll'], float) and 1e20 < d['nll'] < math.inf))" "$T/inf.json" \
  && ok || bad "certain predictions' NLL is not finite and huge: $(grep '"nll"' "$T/inf.json")"
# A file's temperature and noise must lie in a float's range, as --temperature's and --noise's
# do (1e-300 gave an infinite NLL and zero variances, exit 0); a regression model's file has no
# temperature (it would be shown and not applied).
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/t300.safetensors" bnn.temperature 1e-300
for c in "eval --bins 15" "predict --data moons -o $T/never.out" "plot -o $T/never.out"; do
  # shellcheck disable=SC2086
  expect_fail "${c%% *}: a file's temperature of 1e-300" "bnn.temperature is 1e-300, outside the range of a float" \
    "$BNN" ${c%% *} -m "$T/t300.safetensors" ${c#* }
done
# ... and at most 1e6, as --temperature (1e15 made classes tie); compare and calibrate read it too.
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/t1e15.safetensors" bnn.temperature 1e15
for c in "eval --bins 15" "predict --data moons -o $T/never.out" "compare" "calibrate --data moons -o $T/never.out"; do
  # shellcheck disable=SC2086
  expect_fail "${c%% *}: a file's temperature of 1e15" "t1e15.safetensors: bnn.temperature is 1e+15, above 1e6" \
    "$BNN" ${c%% *} -m "$T/t1e15.safetensors" ${c#* }
done
python3 "$(dirname "$0")/st_meta.py" "$T/sine.safetensors" "$T/s300.safetensors" bnn.sigma 1e-300
expect_fail "predict: a file's noise of 1e-300" "bnn.sigma is 1e-300, outside the range of a float" \
  "$BNN" predict -m "$T/s300.safetensors" --data sine-gap -o "$T/never.csv"
expect_fail "laplace: a file's noise of 1e-300" "bnn.sigma is 1e-300, outside the range of a float" \
  "$BNN" laplace -m "$T/s300.safetensors" -o "$T/never.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/sine.safetensors" "$T/st2.safetensors" bnn.temperature 2
expect_fail "a regression file with a temperature" "bnn.temperature is '2' but the model is a regression model" \
  "$BNN" eval -m "$T/st2.safetensors"
[ ! -e "$T/never.out" ] && [ ! -e "$T/never.csv" ] && ok || bad "a refused file left an output"
# --plot of a regression model is refused before anything runs; a run that fails writing its
# plot (after the metrics: /dev/full takes no bytes) leaves no report behind.
expect_fail "eval --plot of a regression model" "classification" "$BNN" eval -m "$T/sine.safetensors" --json "$T/never.json" --plot "$T/never.svg"
if [ -w /dev/full ] && [ -c /dev/full ]; then
  expect_fail "eval whose plot cannot be written" "cannot write the plot" "$BNN" eval -m "$T/map.safetensors" --json "$T/never.json" --plot /dev/full
  [ ! -e "$T/never.json" ] && ok || bad "a failed eval left its report behind"
fi

# --- a model's data is read as it was in training: the CSV header and target column, the seed
python3 - "$T/numhdr.csv" <<'PYEOF'
import random, sys
random.seed(2)
with open(sys.argv[1], "w") as f:
    f.write("7,8,9\n")  # numeric column names: a header only with --header
    for r in range(60):
        f.write("%d,%.3f,%.3f\n" % (r % 2, random.random(), random.random()))
PYEOF
run "train: numeric header, target first" "$BNN" train --data "csv:$T/numhdr.csv" --header --target-col 0 --epochs 1 --holdout 10 -q -o "$T/numhdr.safetensors"
run "laplace on the recorded data" "$BNN" laplace -m "$T/numhdr.safetensors" --prior 1 -o "$T/numhdr_la.safetensors"
run "calibrate on the recorded data" "$BNN" calibrate -m "$T/numhdr.safetensors" -o "$T/numhdr_cal.safetensors"
run "predict on the recorded data" "$BNN" predict -m "$T/numhdr.safetensors" --data "csv:$T/numhdr.csv" -o "$T/numhdr.csv.pred"
[ "$(wc -l <"$T/numhdr.csv.pred")" -eq 61 ] && ok || bad "predict read the header as data or lost a row: $(wc -l <"$T/numhdr.csv.pred") lines"
run "train moons seed 5" "$BNN" train --data moons --seed 5 --epochs 2 -q -o "$T/seed5.safetensors"
run "eval train split, recorded seed" "$BNN" eval -m "$T/seed5.safetensors" --split train
a=$(val accuracy)
# --seed draws the out-of-distribution noise here, not the model's own data.
run "eval train split, --seed 0" "$BNN" eval -m "$T/seed5.safetensors" --split train --ood noise:2:50 --seed 0
[ -n "$a" ] && [ "$a" = "$(val accuracy)" ] && ok || bad "toy data regenerated with the model's seed, whatever --seed ($a vs $(val accuracy))"
# Where nothing draws from --seed (a point estimate on its own generated data) it is refused, as
# laplace and von refuse it, instead of being accepted and ignored.
for c in "eval -m $T/seed5.safetensors" "eval -m $T/seed5.safetensors --data moons" "predict -m $T/seed5.safetensors --data moons -o $T/never.csv" "compare -m $T/seed5.safetensors" "plot -m $T/seed5.safetensors -o $T/never.svg"; do
  # shellcheck disable=SC2086 # $c is split into words on purpose
  expect_usage "$c --seed 3: nothing random" "--seed is for weight samples.*nothing here is random" "$BNN" $c --seed 3
done
[ ! -e "$T/never.csv" ] && [ ! -e "$T/never.svg" ] && ok || bad "a refused --seed left an output file"
# Without bnn.seed the model's own generated data is drawn from --seed (as an export may be): the
# option is taken, and changes the data.
python3 "$HERE/st_meta.py" "$T/seed5.safetensors" "$T/noseed.safetensors" bnn.seed
run "eval, own data without a recorded seed" "$BNN" eval -m "$T/noseed.safetensors" --split train --seed 5
a5=$(val accuracy)
run "eval, own data without a recorded seed, --seed 6" "$BNN" eval -m "$T/noseed.safetensors" --split train --seed 6
[ -n "$a5" ] && [ "$a5" = "$a" ] && [ "$(val accuracy)" != "$a" ] && ok || bad "--seed draws a model's data without bnn.seed: $a5 and $(val accuracy) (recorded seed 5: $a)"
# Generated data other than the model's own does draw from it.
run "eval, --seed for other generated data" "$BNN" eval -m "$T/seed5.safetensors" --ood noise:2:50 --seed 3
run "compare, --seed for out-of-distribution noise" "$BNN" compare -m "$T/seed5.safetensors" --ood noise:2:50 --seed 3
run "laplace of the seed-5 model" "$BNN" laplace -m "$T/seed5.safetensors" --prior 1 -o "$T/seed5_la.safetensors"
run "eval its posterior, train split" "$BNN" eval -m "$T/seed5_la.safetensors" --split train --samples 0
grep -q "moons, train split" "$T/out" && grep -q "^accuracy" "$T/out" && [ "$(grep -c . "$T/out")" -gt 3 ] && ok || bad "eval of the Laplace file"
run "laplace file records the seed" "$BNN" info "$T/seed5_la.safetensors"
grep -q "bnn.seed *5" "$T/out" && ok || bad "the Laplace file records the MAP's seed"

# A Laplace file in compare and plot: the GLM predictive by default, weight samples with
# --samples, Monte-Carlo over the linearised logits with --link-samples.
run "laplace on moons" "$BNN" laplace -m "$T/map.safetensors" -o "$T/la.safetensors"
run "compare laplace, GLM" "$BNN" compare -m "$T/la.safetensors"
glm=$(awk '$1 == "test" && $2 == "NLL" {print $3}' "$T/out")
run "compare laplace, samples" "$BNN" compare -m "$T/la.safetensors" --samples 20
smp=$(awk '$1 == "test" && $2 == "NLL" {print $3}' "$T/out")
run "compare laplace, link samples" "$BNN" compare -m "$T/la.safetensors" --link-samples 50
lnk=$(awk '$1 == "test" && $2 == "NLL" {print $3}' "$T/out")
[ -n "$glm" ] && [ "$glm" != "$smp" ] && ok || bad "compare --samples reaches a Laplace posterior ($glm vs $smp)"
[ -n "$lnk" ] && [ "$glm" != "$lnk" ] && ok || bad "compare --link-samples reaches a Laplace posterior ($glm vs $lnk)"
run "eval laplace, link samples" "$BNN" eval -m "$T/la.safetensors" --link-samples 50 --ood noise:2:100 --json "$T/la.json"
grep -q "^mutual inf" "$T/out" && grep -q '"link_samples":[[:space:]]*50' "$T/la.json" && ok || bad "eval shows and records link-sample mutual information"
run "plot laplace" "$BNN" plot -m "$T/la.safetensors" --link-samples 20 -o "$T/la.svg"
# Weight samples replace the linearised predictive, so --link-samples would be ignored: refused.
for c in "eval -m $T/la.safetensors" "compare -m $T/la.safetensors" "plot -m $T/la.safetensors -o $T/never.svg" \
         "predict -m $T/la.safetensors --data moons -o $T/never.csv"; do
  # shellcheck disable=SC2086
  expect_fail "${c%% *}: --samples with --link-samples" "--link-samples is for a Laplace or VON posterior's linearised predictive, which --samples S > 0 replaces" \
    "$BNN" $c --samples 4 --link-samples 4
done
grep -q "linearised (GLM)" "$T/la.svg" && ok || bad "plot titles a Laplace file's GLM predictive"
run "plot laplace, weight samples" "$BNN" plot -m "$T/la.safetensors" --samples 4 --grid 10 \
  -o "$T/la_s.svg"
grep -q " (model average)</text>" "$T/la_s.svg" && ! grep -q "linearised" "$T/la_s.svg" && ok ||
  bad "plot titles a Laplace file's weight samples"

# --- options
expect_fail "an option given twice" "given twice" "$BNN" train --data moons --epochs 1 --epochs 2 -q -o "$T/never.safetensors"
expect_fail "a stray argument" "unexpected argument" "$BNN" eval -m "$T/map.safetensors" extra
expect_fail "threads far too many" "threads" "$BNN" eval -m "$T/map.safetensors" --threads 100000
expect_fail "negative threads" "threads" "$BNN" predict -m "$T/map.safetensors" --data moons --threads -1 -o "$T/never.csv"
expect_fail "an ivon setting with adamw" "not of --method adamw" "$BNN" train --data moons --hess-init 0.1 -q -o "$T/never.safetensors"
expect_fail "weight decay with mfvi" "prior-prec" "$BNN" train --data moons --method mfvi --weight-decay 0.1 -q -o "$T/never.safetensors"
expect_fail "noise on classification data" "noise" "$BNN" train --data moons --noise 0.1 -q -o "$T/never.safetensors"
# A prior so small that the posterior is unusable is refused, and nothing is saved.
expect_fail "laplace full, a singular posterior" "not finite at prior precision 1e-300: the posterior precision is not positive definite there .*a larger prior precision" \
  "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian full --prior 1e-300 -o "$T/never.safetensors"
expect_fail "laplace kron, an overflowing posterior" "at prior precision 1e-300 a weight sample is not finite .*choose a larger --prior" \
  "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian kron --prior 1e-300 -o "$T/never.safetensors"
expect_fail "rank without lowrank" "lowrank" "$BNN" laplace -m "$T/map.safetensors" --hessian kron --rank 5 -o "$T/never.safetensors"
expect_fail "sgd momentum above 1" "momentum" "$BNN" train --data moons --method sgd --momentum 5 -q -o "$T/never.safetensors"
expect_fail "epochs beyond the limit" "epochs" "$BNN" train --data moons --epochs 9223372036854775807 -q -o "$T/never.safetensors"
expect_fail "a learning rate no float holds" "range of a float" "$BNN" train --data moons --lr 1e300 -q -o "$T/never.safetensors"
expect_fail "samples beyond the limit" "samples" "$BNN" eval -m "$T/map.safetensors" --samples 100000000

# --- damaged inputs
printf 'a,b,y\n0.1,0.2,0\n0.9,0.8,1\n' | gzip | head -c 30 >"$T/trunc.csv.gz"
expect_fail "truncated csv.gz" "cannot read" "$BNN" train --data "csv:$T/trunc.csv.gz" -q -o "$T/never.safetensors"
run "train ivon" "$BNN" train --data moons --method ivon --epochs 2 -q -o "$T/ivon.safetensors"
expect_fail "calibrate a posterior" "point estimate" "$BNN" calibrate -m "$T/ivon.safetensors" --data moons -o "$T/never.safetensors"
# Metadata edited to nonsense: a Laplace fit of a model whose noise is NaN, and a damaged
# checkpoint (tests/st_meta.py rewrites one metadata value).
python3 "$(dirname "$0")/st_meta.py" "$T/sine.safetensors" "$T/badsigma.safetensors" bnn.sigma nan
expect_fail "laplace with sigma nan" "bnn.sigma" "$BNN" laplace -m "$T/badsigma.safetensors" --prior 1 -o "$T/never.safetensors"
expect_fail "eval with sigma nan" "bnn.sigma" "$BNN" eval -m "$T/badsigma.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/dh.safetensors" "$T/badsigma_c.safetensors" bnn.sigma nan
expect_fail "calibrate with sigma nan" "bnn.sigma is 'nan'" "$BNN" calibrate -m "$T/badsigma_c.safetensors" -o "$T/never.safetensors"
run "checkpoint" "$BNN" train --data moons --epochs 3 --stop-after 1 --checkpoint "$T/ck.safetensors" -q
# A seed above 2^53 survives the checkpoint exactly (it was read back through a double, so the
# resumed run shuffled with another seed).
run "full run, seed 2^53 + 1" "$BNN" train --data moons --epochs 2 --seed 9007199254740993 -q -o "$T/seed_full.safetensors"
run "checkpoint, seed 2^53 + 1" "$BNN" train --data moons --epochs 2 --seed 9007199254740993 --stop-after 1 --checkpoint "$T/seed_ck.safetensors" -q
run "resume, seed 2^53 + 1" "$BNN" train --resume "$T/seed_ck.safetensors" -q -o "$T/seed_resumed.safetensors"
cmp -s "$T/seed_full.safetensors" "$T/seed_resumed.safetensors" && ok || bad "a resumed run with a large seed writes the same file"
run "resume onto the same checkpoint" "$BNN" train --resume "$T/seed_ck.safetensors" --checkpoint "$T/seed_ck.safetensors" -q -o "$T/seed_resumed2.safetensors"
cmp -s "$T/seed_full.safetensors" "$T/seed_resumed2.safetensors" && ok || bad "--resume X --checkpoint X"
# The same file by two spellings (existing or not): the model must not replace the checkpoint.
expect_fail "-o is the checkpoint, spelled differently" "-o and --checkpoint name the same file" "$BNN" train --data moons --epochs 3 --stop-after 1 --checkpoint "$T/./spell.safetensors" -q -o "$T/spell.safetensors"
[ ! -e "$T/spell.safetensors" ] && ok || bad "a refused run wrote its checkpoint"
expect_fail "-o is the checkpoint resumed" "the model would replace it" "$BNN" train --resume "$T/seed_ck.safetensors" -q -o "$T/../$(basename "$T")/seed_ck.safetensors"
run "the checkpoint is still one" "$BNN" train --resume "$T/seed_ck.safetensors" -q -o "$T/seed_resumed3.safetensors"
# A diverging run: one line saying where, and that the output was not written.
expect_fail "diverging sgd" "training diverged at epoch 1, step [0-9]* of [0-9]*: .*; .*never.safetensors was not written" "$BNN" train --data moons --method sgd --lr 1e30 --epochs 3 -q -o "$T/never.safetensors"
# Diverged while every number stays finite (weights grown by thirty orders of magnitude): refused
# as well, for each method, rather than saved with exit 0.
for m in adamw ivon sgd; do
  expect_fail "$m, finite blow-up" "training diverged: the last epoch's mean loss is .*, against .* at the first step .*; .*never.safetensors was not written" \
    "$BNN" train --data sine-gap --method $m --lr 1e9 --epochs 3 -q -o "$T/never.safetensors"
done
[ ! -e "$T/never.safetensors" ] && ok || bad "a diverged run wrote its file"
# A run stopped with --stop-after is judged by its weights before its model is saved, and says
# that the checkpoint holds the run.
expect_fail "sgd, finite blow-up, stopped" "training diverged: at the weights it ended with the mean loss on 64 training examples is .*; .*never.safetensors was not written (the checkpoint .*dv_ck.safetensors holds the run)" \
  "$BNN" train --data sine-gap --method sgd --lr 1e9 --epochs 3 --stop-after 2 --checkpoint "$T/dv_ck.safetensors" -q -o "$T/never.safetensors"
# ... by its weights alone: IVON's early epochs spike (epoch 5's mean loss here is 1.4e4 times the
# first step's) and recover, and weights that have recovered are saved.
run "ivon stopped after a spiking epoch" "$BNN" train --data sine-gap --method ivon --epochs 30 --batch-size 16 --lr 0.5 -q --stop-after 5 --checkpoint "$T/spike_ck.safetensors" -o "$T/spike.safetensors"
# One heavy-tailed target does not make a healthy run diverged (batch size 1: the last batch is
# that one example when it comes last).
/usr/bin/python3 -c "import numpy as np;r=np.random.default_rng(1);n=200;x=r.uniform(-1,1,n);y=0.1*x+0.01*r.standard_normal(n);o=r.random(n)<0.1;y[o]=200+10*r.standard_normal(o.sum());np.savetxt('$T/heavy.csv',np.c_[x,y],delimiter=',',fmt='%.5f')"
for s in 23 26; do
  run "heavy-tailed targets, batch 1, seed $s" "$BNN" train --data "csv:$T/heavy.csv" --task regression --batch-size 1 --epochs 3 --seed $s -q -o "$T/heavy$s.safetensors"
done
# The last update is judged too: two steps (999 rows and 1), the second blowing up.
expect_fail "sgd, the last step blowing up" "training diverged: at the weights it ended with the mean loss on [0-9]* training examples is" \
  "$BNN" train --data moons --method sgd --lr 1e7 --epochs 1 --batch-size 999 -q -o "$T/never.safetensors"
[ ! -e "$T/never.safetensors" ] && ok || bad "a diverged run wrote its file"
# A checkpoint resumed on other data with as many rows: refused by the data's fingerprint.
printf 'x1,x2,y\n' >"$T/fp.csv"
for i in $(seq 1 40); do echo "0.$i,0.$((i % 7)),$((i % 2))" >>"$T/fp.csv"; done
run "checkpoint on a csv" "$BNN" train --data "csv:$T/fp.csv" --epochs 3 --stop-after 1 --checkpoint "$T/fp_ck.safetensors" -q
run "resume on the same csv" "$BNN" train --resume "$T/fp_ck.safetensors" --checkpoint "$T/fp_ck2.safetensors" --stop-after 2 -q
sed -i 's/,0$/,9/; s/,1$/,0/; s/,9$/,1/' "$T/fp.csv" # the labels swapped, the rows kept
expect_fail "resume on changed data" "was trained on other data (fingerprint [0-9a-f]*, this data's [0-9a-f]*)" \
  "$BNN" train --resume "$T/fp_ck.safetensors" -q -o "$T/never.safetensors"
# eval on another CSV file reads the target column the model was trained with (here the first),
# not the last one (a feature), unless --target-col says otherwise.
for f in ta tb; do
  printf 'y,x1,x2\n' >"$T/$f.csv"
  awk -v s=$([ $f = ta ] && echo 1 || echo 2) 'BEGIN { srand(s); for (i = 0; i < 200; i++) {
    a = 2 * rand() - 1; b = 2 * rand() - 1; printf "%.5f,%.5f,%.5f\n", a + 0.5 * b, a, b } }' >>"$T/$f.csv"
done
run "train on the first column" "$BNN" train --data "csv:$T/ta.csv" --target-col 0 --task regression --epochs 40 -q -o "$T/ta.safetensors"
run "eval on another file" "$BNN" eval -m "$T/ta.safetensors" --data "csv:$T/tb.csv"
r_as=$(val rmse)
run "eval on another file, last column" "$BNN" eval -m "$T/ta.safetensors" --data "csv:$T/tb.csv" --target-col -1
r_last=$(val rmse)
num_holds 'a < 0.3 && l > 2 * a' a="$r_as" l="$r_last" && ok || bad "eval on another csv: rmse $r_as (trained column), $r_last (last column)"
# A file of a later format is refused, not half read.
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/future.safetensors" bnn.format 99
expect_fail "a later file format" "file format '99' is not one this bnn" "$BNN" eval -m "$T/future.safetensors"
# A stray label: the run goes on, with a warning that most of its classes are empty.
printf 'x1,x2,y\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.1,0\n0.2,0.9,1\n0.7,0.7,50\n' >"$T/stray.csv"
run "a stray label" "$BNN" train --data "csv:$T/stray.csv" --epochs 1 -q -o "$T/stray.safetensors"
grep -q "warning: .*has labels 0 .. 50, so the model gets 51 outputs, but 48 of those classes have no training example (the first: 2)" "$T/err" && ok || bad "no warning for a stray label: $(cat "$T/err")"
# Settings that would do nothing are refused, not ignored.
expect_fail "--stop-after past the last epoch" "--stop-after 5 is not before the run's last epoch (3)" "$BNN" train --data moons --epochs 3 --stop-after 5 --checkpoint "$T/never_ck.safetensors" -q -o "$T/never.safetensors"
expect_fail "--stop-after past a resumed run's last epoch" "--stop-after 2 is not before the run's last epoch (2)" "$BNN" train --resume "$T/seed_ck.safetensors" --checkpoint "$T/never_ck.safetensors" --stop-after 2 -q
expect_fail "resume with --epochs 0" "--epochs with --resume sets the run's new total" "$BNN" train --resume "$T/seed_ck.safetensors" --epochs 0 -q -o "$T/never.safetensors"
# A model saved at --stop-after says how far it got: bnn.epochs is the schedule's total and
# bnn.stopped_after the epochs its weights have seen; the resumed run's file has no such key.
run "stop with -o" "$BNN" train --data moons --epochs 3 --stop-after 2 --checkpoint "$T/so_ck.safetensors" -q -o "$T/so.safetensors"
run "info of a stopped run" "$BNN" info "$T/so.safetensors"
grep -q "^  bnn.stopped_after  *2$" "$T/out" && grep -q "^  bnn.epochs  *3$" "$T/out" && ok || bad "a model saved at --stop-after 2 of 3: $(grep -E 'epochs|stopped' "$T/out")"
run "resume the stopped run" "$BNN" train --resume "$T/so_ck.safetensors" -q -o "$T/so_done.safetensors"
run "info of the finished run" "$BNN" info "$T/so_done.safetensors"
! grep -q "stopped_after" "$T/out" && ok || bad "the finished run is marked as stopped"
expect_fail "--stop-after without --checkpoint" "--stop-after stops a run to resume it later" "$BNN" train --data moons --epochs 3 --stop-after 1 -q -o "$T/never.safetensors"
expect_fail "--checkpoint with --epochs 0" "--epochs 0 runs none" "$BNN" train --data moons --epochs 0 --checkpoint "$T/never_ck.safetensors" -q -o "$T/never.safetensors"
[ ! -e "$T/never_ck.safetensors" ] && ok || bad "a refused run wrote a checkpoint"
expect_fail "--json and --plot, spelled differently" "--json and --plot name the same file" "$BNN" eval -m "$T/seed_full.safetensors" --json "$T/./r.json" --plot "$T/r.json"
python3 "$(dirname "$0")/st_meta.py" "$T/dh.safetensors" "$T/badho.safetensors" bnn.data.holdout abc
expect_fail "a hold-out that is not a count" "bnn.data.holdout" "$BNN" calibrate -m "$T/badho.safetensors" -o "$T/never.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/dh.safetensors" "$T/signho.safetensors" bnn.data.holdout +10
expect_fail "a hold-out written with a sign" "bnn.data.holdout" "$BNN" calibrate -m "$T/signho.safetensors" -o "$T/never.safetensors"
expect_fail "an option written with a sign" "expects an integer" "$BNN" train --data moons --epochs +1 -q -o "$T/never.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/ck.safetensors" "$T/ck_epoch.safetensors" bnn.state.epoch 9223372036854775807
expect_fail "checkpoint with a huge epoch" "bnn.state.epoch" "$BNN" train --resume "$T/ck_epoch.safetensors" -q -o "$T/never.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/ck.safetensors" "$T/ck_sched.safetensors" bnn.lr_schedule linear
expect_fail "checkpoint with an unknown schedule" "lr_schedule" "$BNN" train --resume "$T/ck_sched.safetensors" -q -o "$T/never.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/badlik.safetensors" bnn.temperature $'2\nx'
expect_fail "a control character in a metadata value" "bnn.temperature" "$BNN" predict -m "$T/badlik.safetensors" --data moons -o "$T/never.csv"

# A newline in a value the library quotes: still one line (control characters become '?').
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/badlik2.safetensors" bnn.lik $'foo\nbar'
expect_fail "a newline in bnn.lik" "foo?bar" "$BNN" eval -m "$T/badlik2.safetensors"
# info shows a file's text without its control characters (an escape sequence stays off the
# terminal).
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/esc.safetensors" note $'a\033[31mred'
run "info on a file with an escape code" "$BNN" info "$T/esc.safetensors"
grep -q 'a?\[31mred' "$T/out" && ! grep -q $'\033' "$T/out" && ok || bad "info prints control characters"
# A spec far larger than the file's values is refused before anything that size is allocated.
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/huge.safetensors" bnn.model mlp:16777216-4096-2
expect_fail "a model spec larger than the file" "parameters but the file holds" "$BNN" eval -m "$T/huge.safetensors"
# info still shows what the file holds, and its exit status says that the file is unusable.
expect_fail "info on it" "huge.safetensors: the model does not load: .*parameters but the file holds" "$BNN" info "$T/huge.safetensors"
grep -q "does not load" "$T/out" && grep -q "^tensors" "$T/out" && ok || bad "info says the model does not load, and lists the tensors"
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/badpost.safetensors" bnn.posterior nonsense
expect_fail "info on an invalid posterior" "badpost.safetensors: the posterior is invalid: " "$BNN" info "$T/badpost.safetensors"
grep -q "^posterior invalid" "$T/out" && grep -q "^tensors" "$T/out" && ok || bad "info shows the invalid posterior and the tensors"
# The prediction options (one definition, CLI_PREDICT_OPTS) are range-checked alike by every
# command that predicts.
for c in "eval -m $T/map.safetensors" "predict -m $T/map.safetensors -o $T/never.csv --data moons" \
         "compare $T/map.safetensors" "plot -m $T/map.safetensors -o $T/never.svg"; do
  # shellcheck disable=SC2086 # the command and its arguments are split on purpose
  expect_fail "${c%% *}: negative --samples" "--samples must be between 0 and" "$BNN" $c --samples -1
  # shellcheck disable=SC2086
  expect_fail "${c%% *}: too many --link-samples" "--link-samples must be between 0 and" "$BNN" $c --link-samples 100000000
  # shellcheck disable=SC2086
  expect_fail "${c%% *}: negative --seed" "--seed must be >= 0" "$BNN" $c --seed -3
done

[ ! -e "$T/never.csv" ] && [ ! -e "$T/never.svg" ] && [ ! -e "$T/never.json" ] && [ ! -e "$T/never.safetensors" ] \
  && ok || bad "a failed command left a file"
ls "$T" | grep -q '\.tmp\.' && bad "a temporary file was left behind" || ok

# A pipe whose reader has gone (`2>&1 | head -1`) is a failed write, not a kill by SIGPIPE: train
# with its progress on such a pipe finishes and saves (it was killed, nothing saved), and predict
# with its report on one fails with a message (exit 1, not 141). The pipe is closed before the
# command starts, so the test does not race the reader.
closed_pipe() { # closed_pipe stdout|stderr CMD...: CMD's status with that stream on a closed pipe
  /usr/bin/python3 - "$@" <<'EOF'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
which, cmd = sys.argv[1], sys.argv[2:]
p = subprocess.run(cmd, stdout=w if which == "stdout" else subprocess.DEVNULL,
                   stderr=w if which == "stderr" else subprocess.PIPE)
if which == "stdout":
    sys.stderr.write(p.stderr.decode())
print(p.returncode)
EOF
}
rc=$(closed_pipe stderr "$BNN" train --data moons --epochs 2 -o "$T/piped.safetensors")
[ "$rc" = 0 ] && [ -s "$T/piped.safetensors" ] && ok || bad "train with stderr on a closed pipe: status $rc, saved: $(ls "$T/piped.safetensors" 2>&1)"
rc=$(closed_pipe stdout "$BNN" predict -m "$T/piped.safetensors" --data moons -o - 2>"$T/err")
[ "$rc" = 1 ] && grep -q "^bnn predict: -: cannot write: Broken pipe" "$T/err" && ok || bad "predict to a closed pipe: status $rc, $(cat "$T/err")"

# A report that cannot be written is a failure (it exited 0 with nothing written).
if [ -w /dev/full ]; then
  for c in "info $T/dh.safetensors" "eval -m $T/dh.safetensors"; do
    "$BNN" $c >/dev/full 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "cannot write the standard output" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ] && ok || bad "bnn $c to a full disk: exit $rc, $(cat "$T/err")"
  done
  # ... and a command whose report is lost saves nothing: its output file is not written, and one
  # that existed is left as it was.
  echo before >"$T/kept.safetensors"
  for c in "laplace -m $T/dh.safetensors --prior 1 -o $T/never.safetensors" \
           "von -m $T/dh.safetensors --steps 1 -o $T/never.safetensors" \
           "calibrate -m $T/dh.safetensors -o $T/kept.safetensors" \
           "eval -m $T/dh.safetensors --json $T/never.json --plot $T/never.svg"; do
    # shellcheck disable=SC2086
    "$BNN" $c >/dev/full 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "cannot write the standard output: .*; nothing saved" "$T/err" && [ "$(grep -vc "^note: " "$T/err")" -eq 1 ] \
      && [ ! -e "$T/never.safetensors" ] && [ ! -e "$T/never.json" ] && [ ! -e "$T/never.svg" ] \
      && [ "$(cat "$T/kept.safetensors")" = before ] && ok || bad "bnn $c to a full disk: exit $rc, $(cat "$T/err")"
  done
fi
# Options that cannot apply to the model are refused instead of being reported as applied.
expect_fail "--temperature on a regression model" "is a regression model" "$BNN" eval -m "$T/sine.safetensors" --temperature 5
expect_fail "predict --temperature on a regression model" "is a regression model" "$BNN" predict -m "$T/sine.safetensors" --data sine-gap --temperature 9 -o "$T/never.csv"
expect_fail "--noise no float holds" "--noise 1e+300 is outside the range of a float" "$BNN" eval -m "$T/sine.safetensors" --noise 1e300
expect_fail "train --noise no float holds" "--noise 1e+300 is outside the range of a float" "$BNN" train --data sine-gap --noise 1e300 -q -o "$T/never.safetensors"
expect_fail "--ess no float holds" "--ess 1e-300 is outside the range of a float" "$BNN" train --data moons --method ivon --ess 1e-300 -q -o "$T/never.safetensors"
expect_fail "--prior-precision no float holds" "--prior-precision 1e+308 is outside the range of a float" "$BNN" train --data moons --method mfvi --prior-precision 1e308 -q -o "$T/never.safetensors"
# --prior-prec, train's name before, is the same option (so given twice with the new name).
expect_fail "--prior-prec is --prior-precision" "--prior-precision given twice" "$BNN" train --data moons --method mfvi --prior-prec 2 --prior-precision 2 -q -o "$T/never.safetensors"
# A noise in the file that no float holds (a file edited by hand: train refuses such a noise; its
# square overflowed the predictive variance).
python3 "$(dirname "$0")/st_meta.py" "$T/sine.safetensors" "$T/hugesigma.safetensors" bnn.sigma 1e300
expect_fail "a noise no float holds" "bnn.sigma is 1e+300, outside the range of a float" "$BNN" eval -m "$T/hugesigma.safetensors"
expect_fail "--noise on a classifier" "is a classifier" "$BNN" eval -m "$T/seed_full.safetensors" --noise 0.5
expect_fail "--link-samples on a point estimate" "holds a point estimate" "$BNN" eval -m "$T/seed_full.safetensors" --link-samples 10
for c in eval plot predict; do
  out=(); [ $c = eval ] || out=(-o "$T/never.$c"); [ $c = predict ] && out+=(--data moons)
  expect_fail "$c --samples on a point estimate" "--samples averages over weights drawn from a posterior; .*seed_full.safetensors holds a point estimate" \
    "$BNN" $c -m "$T/seed_full.safetensors" --samples 8 "${out[@]}"
done
[ ! -e "$T/never.plot" ] && [ ! -e "$T/never.predict" ] && ok || bad "a refused run wrote its output"
run "--samples 0 on a point estimate" "$BNN" eval -m "$T/seed_full.safetensors" --samples 0
expect_fail "compare --samples without a posterior" "every model here holds a point estimate" "$BNN" compare -m "$T/seed_full.safetensors" --samples 8
expect_fail "compare --samples, a missing model" "absent.safetensors: cannot open" "$BNN" compare -m "$T/seed_full.safetensors" -m "$T/absent.safetensors" --samples 8
# OOD data is inputs only: a CSV of features alone (as predict --input takes), or labelled.
printf '0.5,0.2\n1.5,1.2\n3,4\n' >"$T/ood_x.csv"
printf 'a,b,y\n0.5,0.2,1\n1.5,1.2,0\n3,4,1\n' >"$T/ood_xy.csv"
for f in ood_x ood_xy; do
  run "eval --ood $f" "$BNN" eval -m "$T/seed_full.safetensors" --ood "csv:$T/$f.csv"
  grep -q "^csv:$T/$f.csv  " "$T/out" && ok || bad "OOD row for $f"
  awk '/^csv:/ { print $2 }' "$T/out" >"$T/ent_$f"
done
cmp -s "$T/ent_ood_x" "$T/ent_ood_xy" && ok || bad "the same inputs with or without labels: entropy $(cat "$T/ent_ood_x") vs $(cat "$T/ent_ood_xy")"
printf 'a,b,c\n0.5,0.2,0.7\n1.5,1.2,0.1\n3,4,2.5\n' >"$T/ood_xr.csv" # a third column that is no class label
run "eval --ood, a real-valued last column" "$BNN" eval -m "$T/seed_full.safetensors" --ood "csv:$T/ood_xr.csv"
awk '/^csv:/ { print $2 }' "$T/out" | cmp -s - "$T/ent_ood_x" && ok || bad "the last column of an OOD CSV is dropped whatever it holds"
# The CSV options with data that is not CSV were accepted and ignored.
expect_fail "train --target-col with built-in data" "--target-col is for CSV data" "$BNN" train --data moons --target-col 0 -o "$T/never.safetensors"
expect_fail "train --task with built-in data" "--task is for CSV data" "$BNN" train --data moons --task regression -o "$T/never.safetensors"
expect_fail "eval --header with built-in data" "--header is for CSV data" "$BNN" eval -m "$T/seed_full.safetensors" --header
expect_fail "predict --target-col with --input" "an --input file holds features only" "$BNN" predict -m "$T/seed_full.safetensors" --input "$T/ood_x.csv" --target-col 0 -o "$T/never.csv"
expect_fail "an empty --model" "--model is empty" "$BNN" eval -m ""
expect_fail "an empty --output" "--output is empty" "$BNN" train --data moons -o ""
expect_fail "an empty -m in compare" "--model is empty" "$BNN" compare -m "$T/seed_full.safetensors" -m ""
expect_fail "an empty --ood" "--ood is empty" "$BNN" eval -m "$T/seed_full.safetensors" --ood ""
expect_fail "a hexadecimal --prior" "--prior must be marglik" "$BNN" laplace -m "$T/map.safetensors" --prior 0x10 -o "$T/never.safetensors"
expect_fail "laplace, a prior that overflows" "the log marginal likelihood is not finite at prior precision 1e+308: its prior term" \
  "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian diag --prior 1e308 -o "$T/never.safetensors"
expect_fail "a hexadecimal number" "--lr expects a number, got '0x10'" "$BNN" train --data moons --lr 0x10 -o "$T/never.safetensors"
expect_fail "predict --header with --no-header" "--header and --no-header exclude each other" "$BNN" predict -m "$T/seed_full.safetensors" --input "$T/ood_x.csv" --header --no-header -o "$T/never.csv"
run "predict --no-header with a CSV --input" "$BNN" predict -m "$T/seed_full.safetensors" --input "$T/ood_x.csv" --no-header -o "$T/pin.csv"
expect_fail "laplace --seed with nothing random" "--seed is for --curvature ggn-mc" "$BNN" laplace -m "$T/seed_full.safetensors" --seed 3 -o "$T/never.safetensors"
expect_fail "laplace --steps with a fixed prior" "--steps is for --prior marglik" "$BNN" laplace -m "$T/seed_full.safetensors" --prior 2 --steps 10 -o "$T/never.safetensors"
expect_fail "plot --what on a regressor" "is a regressor" "$BNN" plot -m "$T/sine.safetensors" --what entropy -o "$T/never.svg"
expect_fail "plot --grid on a regressor" "is a regressor" "$BNN" plot -m "$T/sine.safetensors" --grid 50 -o "$T/never.svg"
expect_fail "compare --link-samples without a Laplace posterior" "none of the models holds one" "$BNN" compare -m "$T/seed_full.safetensors" --link-samples 10
expect_fail "sgd --momentum 1.5" "--momentum must be in" "$BNN" train --data moons --method sgd --momentum 1.5 -o "$T/never.safetensors"
expect_fail "ivon --mc-samples 20000" "--mc-samples must be between 1 and" "$BNN" train --data moons --method ivon --mc-samples 20000 -o "$T/never.safetensors"
printf 'a,b,y\n0.1,0.2,20000000\n0.3,0.4,1\n' >"$T/biglabel.csv"
expect_fail "a label past the widest layer" "has 20000001 classes" "$BNN" train --data "csv:$T/biglabel.csv" -o "$T/never.safetensors"
expect_fail "calibrate --split without --data" "chooses a split of --data" "$BNN" calibrate -m "$T/dh.safetensors" --split train -o "$T/never.safetensors"
# calibrate's batch is capped at the data (it reserved activations for the batch given: 2.3 GB
# for -b 2000000 on 200 rows; this one cannot be allocated at all).
run "calibrate, a batch beyond the data" "$BNN" calibrate -m "$T/dh.safetensors" -b 99999999999999 -o "$T/cal_big.safetensors"

# --- session 12: predict's input told by content, -o -, outputs that cannot be created, usage codes
printf '0.5,0.2\n1.5,1.2\n' >"$T/feat_noext"
run "predict: text without a .csv name is CSV" "$BNN" predict -m "$T/map.safetensors" --input "$T/feat_noext" -o "$T/p_noext.csv"
[ "$(wc -l <"$T/p_noext.csv")" -eq 3 ] && ok || bad "predict on a nameless CSV: $(cat "$T/p_noext.csv")"
python3 -c "import sys; sys.stdout.buffer.write(bytes([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 2]) + bytes(range(0, 250, 42)))" >"$T/feat_idx.dat"
run "predict: IDX by its magic whatever the name" "$BNN" predict -m "$T/map.safetensors" --input "$T/feat_idx.dat" -o "$T/p_idx.csv"
[ "$(wc -l <"$T/p_idx.csv")" -eq 4 ] && ok || bad "predict on an IDX .dat: $(cat "$T/p_idx.csv")"
python3 -c "import sys; sys.stdout.buffer.write(bytes([2, 1, 3, 200, 17]) * 20)" >"$T/junk.bin"
expect_fail "predict: neither text nor NumPy nor IDX" "junk.bin is not CSV, NPY or IDX" "$BNN" predict -m "$T/map.safetensors" --input "$T/junk.bin" -o "$T/never.csv"
# A Laplace posterior's probit predictive has no mutual information to report: nan, not 0.
run "predict laplace probit" "$BNN" predict -m "$T/la.safetensors" --input "$T/feat_noext" -o "$T/p_la.csv"
[ "$(awk -F, 'NR > 1 { print $NF }' "$T/p_la.csv" | sort -u)" = nan ] && ok || bad "probit mutual_info: $(cat "$T/p_la.csv")"
run "predict laplace link samples" "$BNN" predict -m "$T/la.safetensors" --input "$T/feat_noext" --link-samples 50 -o "$T/p_las.csv"
awk -F, 'NR > 1 && !($NF + 0 > 0) { exit 1 }' "$T/p_las.csv" && ok || bad "link-sampled mutual_info: $(cat "$T/p_las.csv")"
run "predict laplace weight samples" "$BNN" predict -m "$T/la.safetensors" --input "$T/feat_noext" --samples 8 -o "$T/p_lw.csv"
awk -F, 'NR > 1 && !($NF + 0 > 0) { exit 1 }' "$T/p_lw.csv" && ok || bad "weight-sampled mutual_info: $(cat "$T/p_lw.csv")"
# "-o -" is the standard output, as in other tools; no file named '-' appears.
(cd "$T" && "$BNN" predict -m map.safetensors --input feat_noext -o - >stdout.csv 2>err.txt) && [ ! -e "$T/-" ] &&
  cmp -s "$T/stdout.csv" "$T/p_noext.csv" && grep -q "to the standard output" "$T/err.txt" && ok || bad "predict -o -: $(cat "$T/err.txt")"
# A directory that says it is writable but takes no file (/proc) is refused before the work.
if [ -d /proc/self ]; then
  expect_fail "train into /proc" "cannot create a file in /proc" "$BNN" train --data moons --epochs 200 -q -o /proc/never.safetensors
fi
# Usage errors exit 2: a number with a leading space, an unknown dataset, a likelihood for the other task.
expect_usage "a leading space" "--lr expects a number, got ' 0.1'" "$BNN" train --data moons --lr ' 0.1' -o "$T/never.safetensors"
expect_usage "unknown dataset" "unknown dataset 'nosuch'" "$BNN" train --data nosuch -o "$T/never.safetensors"
expect_usage "--lik for the other task" "--lik categorical is for classification, but sine-gap is regression data" "$BNN" train --data sine-gap --lik categorical -o "$T/never.safetensors"
expect_usage "a missing target column" "target column 7 does not exist" "$BNN" eval -m "$T/ta.safetensors" --data "csv:$T/tb.csv" --target-col 7
expect_usage "version with an argument" "bnn version: takes no arguments (got 'x')" "$BNN" version x
"$BNN" version --help >"$T/out" 2>&1 && grep -q "^usage: bnn version" "$T/out" && ok || bad "bnn version --help: $(cat "$T/out")"
# bnn starts with GOMP_SPINCOUNT=1000 (OpenMP's waiting threads sleep sooner, so that two runs on
# the same cores do not fight for them), unless the user set it or OMP_WAIT_POLICY: libgomp's
# OMP_DISPLAY_ENV shows what it read as it loaded (a build without libgomp shows none of it).
spin() { env "$@" OMP_DISPLAY_ENV=verbose timeout 20 "$BNN" version 2>&1 | sed -n "s/^ *GOMP_SPINCOUNT = '\([0-9]*\)'$/\1/p" | tail -1; }
if [ -n "$(spin -u GOMP_SPINCOUNT)" ]; then
  [ "$(spin -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY)" = 1000 ] && ok || bad "bnn did not start with GOMP_SPINCOUNT=1000: $(spin -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY)"
  [ "$(spin GOMP_SPINCOUNT=5)" = 5 ] && ok || bad "a user's GOMP_SPINCOUNT=5 was replaced: $(spin GOMP_SPINCOUNT=5)"
  [ "$(spin -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active)" != 1000 ] && ok || bad "a user's OMP_WAIT_POLICY=active got GOMP_SPINCOUNT=1000"
  # With the user's spins and bnn's own kernels there is nothing to start again for: one start.
  core=$("$BNN" version 2>/dev/null | sed -n 's/^bnn [0-9.]* (OpenBLAS, \([A-Za-z0-9]*\) kernels)$/\1/p')
  starts=$(env GOMP_SPINCOUNT=5 ${core:+OPENBLAS_CORETYPE=$core} OMP_DISPLAY_ENV=true timeout 20 "$BNN" version 2>&1 | grep -c "OPENMP DISPLAY ENVIRONMENT BEGIN")
  [ "$starts" = 1 ] && ok || bad "bnn started $starts times with nothing to set"
  # Started again, the process keeps its name (the kernel would call it "exe"), for ps and pgrep.
  (sleep 3; echo) | env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$BNN" predict -m "$T/map.safetensors" --input - -o "$T/never.csv" 2>/dev/null &
  sleep 1
  [ "$(cat /proc/$!/comm 2>/dev/null)" = bnn ] && ok || bad "the restarted process is called '$(cat /proc/$!/comm 2>/dev/null)'"
  wait
fi
# version names OpenBLAS's kernels, and says when they are generic ones below what the CPU has
# (OpenBLAS's fallback for a CPU it does not know; forced here with OPENBLAS_CORETYPE)
"$BNN" version >"$T/out" 2>&1
if grep -q "^bnn [0-9.]* (OpenBLAS, [A-Za-z0-9]* kernels)$" "$T/out"; then
  ok
  if grep -q "^flags.* avx2 .*fma\|^flags.* fma .*avx2" /proc/cpuinfo 2>/dev/null; then
    OPENBLAS_CORETYPE=Prescott "$BNN" version >"$T/out" 2>&1
    grep -q "^bnn .*(OpenBLAS, Prescott kernels)$" "$T/out" &&
      grep -q "^note: OpenBLAS chose its generic Prescott kernels .*run with OPENBLAS_CORETYPE=\(Haswell\|SkylakeX\)$" "$T/out" &&
      ok || bad "version with generic kernels on an AVX2 CPU: $(cat "$T/out")"
    OPENBLAS_CORETYPE=Haswell "$BNN" version >"$T/out" 2>&1
    [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q "(OpenBLAS, Haswell kernels)" "$T/out" && ok || bad "version with Haswell kernels: $(cat "$T/out")"
  fi
  # Where OpenBLAS falls back to generic kernels by itself (this CPU unknown to it), bnn starts
  # again with the better ones: version says so, the one the Prescott line above names, and a run
  # gives the bits a run with that OPENBLAS_CORETYPE set by hand gives.
  env -u OPENBLAS_CORETYPE "$BNN" version >"$T/out" 2>&1
  if grep -q "^note: bnn set OPENBLAS_CORETYPE" "$T/out"; then
    set -- $(sed -n 's/^note: bnn set OPENBLAS_CORETYPE=\([A-Za-z]*\), since OpenBLAS takes its generic \([A-Za-z0-9]*\) kernels for this CPU (OPENBLAS_CORETYPE=\2 keeps them)$/\1 \2/p' "$T/out")
    [ $# -eq 2 ] && grep -q "^bnn [0-9.]* (OpenBLAS, $1 kernels)$" "$T/out" && ok || bad "version after bnn chose the kernels: $(cat "$T/out")"
    better=$1
    OPENBLAS_CORETYPE=$2 "$BNN" version >"$T/out" 2>&1
    grep -q "^note: OpenBLAS chose its generic $2 kernels .*run with OPENBLAS_CORETYPE=$better$" "$T/out" && ok || bad "version with OpenBLAS's own kernels: $(cat "$T/out")"
    # started through the dynamic loader, /proc/self/exe is the loader: no restart, and it runs
    if [ -x /lib64/ld-linux-x86-64.so.2 ]; then
      env -u OPENBLAS_CORETYPE /lib64/ld-linux-x86-64.so.2 "$BNN" version >"$T/out" 2>&1 &&
        grep -q "^bnn [0-9.]* (OpenBLAS, $2 kernels)$" "$T/out" && ok || bad "version through ld.so: $(cat "$T/out")"
    fi
    env -u OPENBLAS_CORETYPE "$BNN" train --data moons --epochs 3 -q -o "$T/k_auto.safetensors" &&
      OPENBLAS_CORETYPE=$better "$BNN" train --data moons --epochs 3 -q -o "$T/k_set.safetensors" &&
      cmp -s "$T/k_auto.safetensors" "$T/k_set.safetensors" && ok || bad "a run on the kernels bnn chose differs from one with OPENBLAS_CORETYPE=$better"
  else
    [ "$(wc -l <"$T/out")" -eq 1 ] && ok || bad "bnn version: $(cat "$T/out")"
  fi
else
  grep -q "^bnn [0-9.]* (plain C GEMM)$\|^bnn [0-9.]* (OpenBLAS)$" "$T/out" && ok || bad "bnn version: $(cat "$T/out")"
fi
# plot writes SVG only, and reads CSV data as the other commands do.
expect_usage "plot to a .png" "plot writes SVG" "$BNN" plot -m "$T/map.safetensors" -o "$T/never.png"
expect_usage "eval --plot to a .png" "--plot writes SVG" "$BNN" eval -m "$T/map.safetensors" --plot "$T/never.png"
[ ! -e "$T/never.png" ] && ok || bad "plot left a .png"
printf 'y,x\n' >"$T/sx.csv"
awk 'BEGIN { srand(3); for (i = 0; i < 100; i++) { x = 6 * rand() - 3; printf "%.5f,%.5f\n", sin(x), x } }' >>"$T/sx.csv"
cp "$T/sx.csv" "$T/sx2.csv"
run "train a 1-D regressor on column 0" "$BNN" train --data "csv:$T/sx.csv" --target-col 0 --task regression --epochs 20 -q -o "$T/sx.safetensors"
run "plot it" "$BNN" plot -m "$T/sx.safetensors" -o "$T/sx.svg"
run "plot it on another file, --target-col 0" "$BNN" plot -m "$T/sx.safetensors" --data "csv:$T/sx2.csv" --target-col 0 --header -o "$T/sx2.svg"
cmp -s "$T/sx.svg" "$T/sx2.svg" && ok || bad "plot on a copy of the training file differs"
expect_fail "plot --header with built-in data" "--header is for CSV data" "$BNN" plot -m "$T/map.safetensors" --header -o "$T/never.svg"
# compare on regression data says so (it said "1 features ... expects 2").
expect_usage "compare on regression data" "sine-gap is regression data; compare is for classifiers" "$BNN" compare -m "$T/map.safetensors" --data sine-gap
# eval on a single CSV file does not call it a test split.
run "eval on one csv file" "$BNN" eval -m "$T/sx.safetensors"
grep -q "^data  *csv:.*sx.csv, 100 examples (one file serves both splits)" "$T/out" && ok || bad "eval header on one file: $(grep ^data "$T/out")"

# A signal during a write removes the temporary file (it was left at 30-40 MB). Inconclusive (not
# counted) if the write ends before the temporary file is seen.
python3 - "$BNN" "$T" <<'PY' && ok || bad "a signal during a write left files behind"
import glob, os, signal, subprocess, sys, time
bnn, t = sys.argv[1], sys.argv[2]
bad = []
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGALRM):
    out = os.path.join(t, "sig_out.safetensors")
    p = subprocess.Popen([bnn, "laplace", "-m", os.path.join(t, "sine.safetensors"), "--subset", "all",
                          "--hessian", "full", "--prior", "1", "-o", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not glob.glob(out + ".tmp.*") and p.poll() is None and time.time() - t0 < 60:
        time.sleep(0.002)
    if p.poll() is None:
        p.send_signal(sig)
    p.wait()
    # (A signal after the rename finds the output complete, and no temporary file.)
    if p.returncode == -sig and glob.glob(out + ".tmp.*"):
        bad.append((sig, glob.glob(out + ".tmp.*")))
    for f in glob.glob(out + "*"):
        os.remove(f)
sys.exit(1 if bad else 0)
PY
# A signal the parent set to be ignored stays ignored (nohup's SIGHUP, a batch system's warning
# USR1): bnn's clean-up handler goes only where the action is the default (it replaced them all,
# so `nohup bnn train` died when its terminal closed).
bash -c "trap '' HUP USR1; exec '$BNN' train --data moons --epochs 1000 -q -o '$T/nohup.safetensors'" 2>"$T/err" &
nh=$!
sleep 0.5
kill -HUP $nh 2>/dev/null; kill -USR1 $nh 2>/dev/null
wait $nh
[ $? -eq 0 ] && [ -s "$T/nohup.safetensors" ] && ok || bad "ignored signals ended a run: $(cat "$T/err")"
# A file-size limit reached during a write (ulimit -f, in KiB) is a failed write: a message, exit
# 1, the old file intact and no temporary file (SIGXFSZ killed bnn and left PATH.tmp.PID).
echo OLD >"$T/fsz.csv"
bash -c "ulimit -f 8; exec '$BNN' predict -m '$T/map.safetensors' --data noise:2:2000 -o '$T/fsz.csv'" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "File too large" "$T/err" && [ "$(cat "$T/fsz.csv")" = OLD ] &&
  [ -z "$(ls "$T"/fsz.csv.* 2>/dev/null)" ] && ok || bad "a file-size limit: $(cat "$T/err"), $(ls "$T"/fsz.csv*)"
# An output that leads to a closed standard output (a link to /proc/self/fd/1, as /dev/stdout
# is) is refused; the link was replaced by a regular file (as root: the system's /dev/stdout).
ln -s /proc/self/fd/1 "$T/mystdout"
"$BNN" predict -m "$T/map.safetensors" --data moons -o "$T/mystdout" >&- 2>"$T/err"
[ $? -eq 1 ] && grep -q "mystdout leads to /proc/self/fd/1, a file descriptor that is not open" "$T/err" &&
  [ -L "$T/mystdout" ] && ok || bad "an output to a closed stdout: $(cat "$T/err"); $(ls -l "$T/mystdout")"
# Allocation failures (the failmalloc shim fails the N-th allocation, for N over the whole run):
# each command either does what a normal run does (the same report, the same output file) or
# fails (exit 1) with one line saying it ran out of memory, after at most some notes, and leaves
# no output file and no temporary file. Before, a failed allocation inside the JSON parser called
# the header "not valid JSON" (a good model would look corrupt), one in the model's loader was
# described as a property of the file with exit 0, and the writer said "cannot grow the writer's
# metadata". The shim lets allocations made by OpenBLAS, libgomp, libgfortran and the dynamic
# loader themselves succeed (they end the process their own way, or crash, when theirs fail;
# see failmalloc.c), so any other exit is a failure of the test. Every other N for bnn info; for
# the others every 8th N and all of the last 30, where the output is formatted and saved. Not
# under AddressSanitizer, which has its own allocator.
fm_sweep() {
  local name=$1 out=$2 stride=$3; shift 3
  local dir="$T/fm_$name" n rc total fm_bad="" fm_oom=0 fm_ok=0
  mkdir -p "$dir"
  local o="$dir/$out"
  rm -f "$o"
  ( cd "$dir" && "$BNN" "$@" ) >"$T/fm_out" 2>/dev/null || { bad "$name: a normal run failed"; return; }
  grep -v '^time ' "$T/fm_out" >"$T/fm_good"
  [ "$out" = - ] || cp "$o" "$T/fm_good_out"
  rm -f "$T/fm_count"
  ( cd "$dir" && BNN_FAIL_COUNT="$T/fm_count" LD_PRELOAD="$BNN_FAILMALLOC" "$BNN" "$@" >/dev/null 2>&1 )
  total=$(cat "$T/fm_count" 2>/dev/null)
  case "$total" in '' | *[!0-9]*) bad "$name: the shim counted no allocations"; return ;; esac
  for n in $(seq 1 "$total"); do
    [ "$n" -gt $((total - 30)) ] || [ $(((n - 1) % stride)) -eq 0 ] || continue
    rm -f "$o"
    ( cd "$dir" && BNN_FAIL_AT=$n LD_PRELOAD="$BNN_FAILMALLOC" "$BNN" "$@" >"$T/fm_out" 2>"$T/fm_err" )
    rc=$?
    if [ $rc -eq 0 ]; then
      grep -v '^time ' "$T/fm_out" | cmp -s - "$T/fm_good" || fm_bad="$fm_bad $n:exit-0-but-another-report"
      [ "$out" = - ] || cmp -s "$o" "$T/fm_good_out" || fm_bad="$fm_bad $n:exit-0-but-another-file"
      fm_ok=$((fm_ok + 1))
    elif [ $rc -eq 1 ]; then
      fm_oom=$((fm_oom + 1))
      # Notes (and laplace's line about a grid's end) may come first; the error is the last line
      # and the only other one.
      [ "$(grep -v -c -e '^note: ' -e '^grid: ' "$T/fm_err")" -eq 1 ] && tail -n 1 "$T/fm_err" | grep -qi "^bnn $name: .*\(out of memory\|cannot allocate\|no memory\)" ||
        fm_bad="$fm_bad $n:$(tr '\n' '|' <"$T/fm_err" | head -c 120)"
      [ "$out" = - ] || [ ! -e "$o" ] || fm_bad="$fm_bad $n:failed-but-wrote-$out"
    else
      fm_bad="$fm_bad $n:exit-$rc"
    fi
    [ -z "$(ls -A "$dir" | grep -v -x -F "$out")" ] || fm_bad="$fm_bad $n:left-$(ls -A "$dir" | tr '\n' ' ')"
  done
  [ -z "$fm_bad" ] && [ $fm_oom -gt 10 ] && [ $fm_ok -gt 0 ] && ok ||
    bad "allocation failures in bnn $name ($total allocations; $fm_oom reported, $fm_ok ran through):$fm_bad"
}
if [ -z "${ASAN_OPTIONS:-}" ] && [ -z "${BNN_SANITIZED:-}" ] && [ -n "${BNN_FAILMALLOC:-}" ] && [ -f "$BNN_FAILMALLOC" ]; then
  fm_sweep info - 2 info "$T/ivon.safetensors"
  fm_sweep eval - 8 eval -m "$T/ivon.safetensors" --samples 4
  fm_sweep predict p.csv 8 predict -m "$T/map.safetensors" --data moons -o p.csv
  fm_sweep laplace la.st 8 laplace -m "$T/map.safetensors" -o la.st
  # The grid search: its predictions at 21 precisions on the hold-out, and the CLI's own buffers.
  fm_sweep laplace la.st 8 laplace -m "$T/dh.safetensors" --prior grid -o la.st
  fm_sweep train m.st 8 train --data moons --epochs 2 -q -o m.st
  fm_sweep von v.st 8 von -m "$T/map.safetensors" --steps 2 -o v.st
  fm_sweep calibrate c.st 8 calibrate -m "$T/map.safetensors" --data moons -o c.st
  fm_sweep compare - 8 compare -m "$T/map.safetensors" -m "$T/ivon.safetensors"
  # The matrix-free low rank (the 2802 x 2802 matrix does not fit 8 MiB): its arrays and LAPACK's
  # workspaces, whose failures once read "QR of the low-rank basis failed (info -1010)".
  BNN_MEMORY_LIMIT=8M fm_sweep laplace la.st 8 laplace -m "$T/map.safetensors" --subset all --hessian lowrank --rank 10 -o la.st
  grep -q "^lowrank    matrix-free: " "$T/fm_good" && ok || bad "the low-rank sweep did not take the matrix-free way"
fi
# eval --plot with a --json that cannot be written leaves the old plot, and creates no new one.
echo OLD >"$T/keep.svg"
expect_fail "eval --plot, --json to a full device" "/dev/full: cannot write" "$BNN" eval -m "$T/map.safetensors" --plot "$T/keep.svg" --json /dev/full
[ "$(cat "$T/keep.svg")" = OLD ] && [ -z "$(ls "$T"/keep.svg.* 2>/dev/null)" ] && ok || bad "eval replaced its plot though the report failed"
expect_fail "eval --plot (new), --json to a full device" "/dev/full: cannot write" "$BNN" eval -m "$T/map.safetensors" --plot "$T/fresh.svg" --json /dev/full
[ ! -e "$T/fresh.svg" ] && ok || bad "eval created its plot though the report failed"

# laplace --prior grid where no grid value gives a finite validation NLL (the last layer of a
# model with a hold-out scaled by 1e6) is refused; it saved the grid's middle value as if chosen.
python3 -c "
import struct, sys
sys.path.insert(0, '$(dirname "$0")')
import st_meta
h, d = st_meta.read_st('$T/dh.safetensors')
d = bytearray(d)
for name in ('4.weight', '4.bias'):
    o0, o1 = h[name]['data_offsets']
    k = (o1 - o0) // 4
    d[o0:o1] = struct.pack('<%df' % k, *[v * 1e6 for v in struct.unpack('<%df' % k, d[o0:o1])])
st_meta.write_st('$T/bigw.safetensors', h, bytes(d))
"
"$BNN" laplace -m "$T/bigw.safetensors" --prior grid -o "$T/never.safetensors" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "the validation NLL is not finite at any prior precision of the grid" "$T/err" && [ ! -e "$T/never.safetensors" ] &&
  ok || bad "laplace --prior grid with no finite NLL: $(cat "$T/err")"
# marglik says when its optimum was not reached (targets of scale 1e6: sigma 31 after 100 steps).
awk 'BEGIN { srand(4); print "x,y"; for (i = 0; i < 60; i++) { x = 2 * rand() - 1; printf "%.5f,%.1f\n", x, 1e6 * (x + rand()) } }' >"$T/big_y.csv"
run "train on targets of scale 1e6" "$BNN" train --data "csv:$T/big_y.csv" --task regression --epochs 2 -q -o "$T/big_y.safetensors"
run "laplace marglik on it" "$BNN" laplace -m "$T/big_y.safetensors" -o "$T/big_y_la.safetensors"
grep -q "^note: the marginal likelihood was still rising after 100 steps" "$T/err" && ok || bad "no note for an unsettled marglik: $(cat "$T/err")"
# ... and a fit 1.1 nats short after one step, whose optimum is 0.46 away in log δ: a move of
# one step (0.1) gains 0.41 and one of ten (1) overshoots, so only the moves between tell.
run "train a small tanh net" "$BNN" train -d moons --model mlp:2-8-8-2:tanh -e 20 --holdout 100 -q -o "$T/small8.safetensors"
run "laplace marglik, one step" "$BNN" laplace -m "$T/small8.safetensors" --subset all --steps 1 -o "$T/small8_la.safetensors"
grep -q "^note: the marginal likelihood was still rising after 1 step (a move of 0.3 in the log prior along" "$T/err" &&
  ok || bad "no note for a marglik one step short: $(cat "$T/err")"
run "laplace marglik on moons" "$BNN" laplace -m "$T/map.safetensors" -o "$T/never_note.safetensors"
! grep -q "still rising" "$T/err" && ok || bad "a settled marglik was called unsettled: $(cat "$T/err")"
# ... and a slow but steady climb: three identical examples, whose noise σ keeps falling by the
# same amount per step (1.6e-4 after 100 steps, 4.4e-7 and 10.7 nats higher after 1000): one
# step's move gains less than half a nat, larger moves more.
printf '0.5,1.0\n0.5,1.0\n0.5,1.0\n' >"$T/same3.csv"
run "train on three identical examples" "$BNN" train --data "csv:$T/same3.csv" --lik gaussian --epochs 300 --lr 1e-2 -q -o "$T/same3.safetensors"
# (its RMSE, 3.6e-7, is printed in significant digits: four decimals read 0.0000)
run "eval on them" "$BNN" eval -m "$T/same3.safetensors"
rm3=$(val rmse)
num_holds 'r > 0 && r < 1e-5' r="$rm3" && ok || bad "the table's rmse of a near-exact fit: '$rm3'"
run "laplace marglik on them" "$BNN" laplace -m "$T/same3.safetensors" --hessian full -o "$T/same3_la.safetensors"
grep -q "^note: the marginal likelihood was still rising after 100 steps (a move of [0-9.]* in the log prior and noise" "$T/err" && ok || bad "no note for a slowly rising marglik: $(cat "$T/err")"
run "laplace marglik on them, 1000 steps" "$BNN" laplace -m "$T/same3.safetensors" --hessian full --steps 1000 -o "$T/same3_la.safetensors"
! grep -q "still rising" "$T/err" && ok || bad "a settled marglik was called unsettled: $(cat "$T/err")"

# A FIFO as the model file is refused at once (opening it waited for a writer forever).
mkfifo "$T/fifo_model"
expect_fail "a FIFO as the model" "fifo_model: not a regular file" timeout 20 "$BNN" info "$T/fifo_model"
# laplace and von take BNN_MEMORY_LIMIT as train does (they used a fixed 8 GiB).
expect_fail "laplace beyond BNN_MEMORY_LIMIT" "a full Hessian over 2802 parameters needs .*, more than BNN_MEMORY_LIMIT's 64 KiB" env BNN_MEMORY_LIMIT=64K "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian full -o "$T/never.safetensors"
# Divergence that every number hides (found with extreme but legal inputs): an AdamW second
# moment overflowing (features of 1e30 give gradients whose square is Inf: the steps became 0 and
# the weights froze, saved with exit 0); an IVON Hessian estimate with h + delta <= 0 from float
# underflow (h0 1e-33, delta 0: a posterior std of NaN was saved); and a run of one step, whose
# only loss was taken before its update (lr 1e4 saved a network with NLL inf).
printf '0.5,1.0,0\n1.5,-1,1\n0.1,0.2,1\n' >"$T/n3.csv"
printf '1e30,0\n2e30,1\n1.5e30,0\n2.5e30,1\n' >"$T/huge_x.csv"
expect_fail "adamw, an overflowing moment" "AdamW's update at t = 1 produced non-finite weights or moments" \
  "$BNN" train --data "csv:$T/huge_x.csv" --model mlp:1-2 --epochs 3 -q -o "$T/never.safetensors"
expect_fail "ivon, h + delta <= 0" "IVON's update at t = 1 produced non-finite weights or a Hessian estimate h with h + delta <= 0" \
  "$BNN" train --data "csv:$T/n3.csv" --method ivon --hess-init 1e-33 --weight-decay 0 --epochs 1 -q -o "$T/never.safetensors"
expect_fail "one step that diverged" "training diverged: at the weights it ended with the mean loss on [0-9]* training examples is" \
  "$BNN" train --data "csv:$T/n3.csv" --lr 1e4 --epochs 1 -q -o "$T/never.safetensors"
[ ! -e "$T/never.safetensors" ] && ok || bad "a diverged run wrote its file"
# Targets of 1e20 overflow Adam's second moment at any learning rate: the message names the data.
awk 'BEGIN { print "x,y"; for (i = 1; i <= 60; i++) printf "0.%d,%de20\n", i, i % 7 }' >"$T/y1e20.csv"
# (Two lines: the note on the targets' scale before training, then the error.)
"$BNN" train --data "csv:$T/y1e20.csv" --task regression --epochs 5 -q -o "$T/never.safetensors" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 2 ] && grep -q "^note: the targets have a root mean square of" "$T/err" &&
  grep -q "training diverged at epoch [0-9]*, step 1 of 1: AdamW's update at t = [0-9]* produced non-finite weights or moments (the data's values reach 6e+20: standardise the features and targets" "$T/err" &&
  ok || bad "diverging on targets of 1e20 (exit $rc): $(cat "$T/err")"
run "one step that did not diverge" "$BNN" train --data "csv:$T/n3.csv" --epochs 1 -q -o "$T/one_step.safetensors"
# peak_within DESC LIMIT MAX CMD...: CMD, run with BNN_MEMORY_LIMIT=LIMIT (bytes), exits 0 with a
# peak resident memory (ru_maxrss) of at most MAX bytes. Callers skip it under ASan, whose shadow
# memory and quarantine add to every allocation.
peak_within() {
  local desc=$1 limit=$2 max=$3
  shift 3
  run "$desc" python3 -c "
import os, resource, subprocess, sys
env = dict(os.environ, BNN_MEMORY_LIMIT=sys.argv[1])
rc = subprocess.run(sys.argv[3:], env=env, stdout=subprocess.DEVNULL).returncode
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print('peak', peak, 'at most', sys.argv[2])
sys.exit(rc or peak > float(sys.argv[2]))" "$limit" "$max" "$@"
}
# mib_plus COUNT SLACK ROUND: bytes of COUNT MiB (as a message prints it; ROUND: half its last
# digit) plus SLACK MiB, for peak_within: with SLACK 0 the limit, with 32 the allowed peak.
mib_plus() { awk -v c="$1" -v s="$2" -v r="$3" 'BEGIN { printf "%.0f", (c + r + s) * 1048576 }'; }
# A full Hessian counts the Laplace posterior's eigendecomposition too (32 P² bytes, 240 MiB for
# these 2802 weights): the curvature pass alone (12 P², 90 MiB) fitted under 150 MiB, and the run
# then used 253 MiB. Its peak stays within the 240 MiB it counts and 32 MiB for the program and
# its data (not measured under ASan, whose shadow memory and quarantine add to every allocation):
# one more P × P copy would take it to 314 MiB.
expect_fail "full Laplace: its decomposition counts" "a full Hessian over 2802 parameters needs 240 MiB, more than BNN_MEMORY_LIMIT's 150 MiB" \
  env BNN_MEMORY_LIMIT=150M "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian full -o "$T/never.safetensors"
if [ -z "${ASAN_OPTIONS:-}" ] && [ -z "${BNN_SANITIZED:-}" ]; then
  peak_within "full Laplace's peak memory" $((272 << 20)) $((272 << 20)) \
    "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian full -o "$T/full_peak.safetensors"
  # Per-layer priors too: their posterior holds a P × P Cholesky factor beside H and its
  # eigenvectors, and saving copied H and the eigenvectors once more (40 P², 318 MiB here, before
  # the writer borrowed its tensors).
  peak_within "full Laplace's peak memory, per-layer priors" $((272 << 20)) $((272 << 20)) \
    "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian full --prior marglik-layers \
    --steps 3 -o "$T/full_peak_layers.safetensors"
  # Reading that posterior back is refused up front too (it was read and decoded until the machine
  # ran out: a posterior fitted on a big machine got eval killed on a small one): the file image,
  # then the file with its curvature decoded beside it.
  expect_fail "a file beyond BNN_MEMORY_LIMIT" "full_peak.safetensors: reading it needs 120 MiB, more than BNN_MEMORY_LIMIT's 100 MiB" \
    env BNN_MEMORY_LIMIT=100M "$BNN" eval -m "$T/full_peak.safetensors"
  expect_fail "a posterior beyond BNN_MEMORY_LIMIT" "full_peak.safetensors: Laplace posterior: loading it needs about 240 MiB (the file, its curvature decoded and its eigendecomposition), more than BNN_MEMORY_LIMIT's 200 MiB" \
    env BNN_MEMORY_LIMIT=200M "$BNN" predict -m "$T/full_peak.safetensors" --data moons -o "$T/never.csv"
  [ ! -e "$T/never.csv" ] && ok || bad "a refused predict wrote its output"
fi
# So does a Kronecker-factored one: the posterior holds each factor's eigenvectors beside it and
# LAPACK's workspace for the largest (2 n² doubles): for mlp:1500-2's last layer 16·1500² + 16·1500²
# bytes, 68.8 MiB, where the curvature pass alone counted 27.1 MiB (mlp:6000-2: 1.10 GiB used where
# 418 MiB were counted).
/usr/bin/python3 -c "import numpy as np;r=np.random.default_rng(2);x=r.standard_normal((60,1500)).astype(np.float32);np.save('$T/wide_x.npy',x);np.save('$T/wide_y.npy',(x[:,0]>0).astype(np.int64))"
run "train wide" "$BNN" train --data "npy:$T/wide_x.npy,$T/wide_y.npy" --model mlp:1500-2 --epochs 1 -q -o "$T/wide.safetensors"
expect_fail "kron Laplace: its decomposition counts" "a Kronecker-factored Hessian over 3002 parameters needs 68.8 MiB, more than BNN_MEMORY_LIMIT's 40 MiB" \
  env BNN_MEMORY_LIMIT=40M "$BNN" laplace -m "$T/wide.safetensors" -o "$T/never.safetensors"
if [ -z "${ASAN_OPTIONS:-}" ] && [ -z "${BNN_SANITIZED:-}" ]; then
  peak_within "kron Laplace's peak memory" "$(mib_plus 68.8 0 0.05)" "$(mib_plus 68.8 32 0.05)" \
    "$BNN" laplace -m "$T/wide.safetensors" -o "$T/kron_peak.safetensors"
fi
# The matrix-free low rank refuses by its own count (its basis, products and tangents, not the
# 253002 x 253002 matrix): a run given just that much stays within it and 32 MiB for the program
# and its data (an array it did not count, such as the per-example Jacobian rows it once formed,
# 247 MiB here at batch 256, would break this).
run "train 2-500-500-2" "$BNN" train --data moons --model mlp:2-500-500-2 --epochs 1 -q -o "$T/w500.safetensors"
expect_fail "matrix-free low rank: its count" "a low-rank Hessian (rank 1) over 253002 parameters needs [0-9.]* MiB even without forming" \
  env BNN_MEMORY_LIMIT=1M "$BNN" laplace -m "$T/w500.safetensors" --subset all --hessian lowrank --rank 1 -o "$T/never.safetensors"
mf_need=$(sed -n 's/.* needs \([0-9.]*\) MiB even without.*/\1/p' "$T/err")
if [ -z "${ASAN_OPTIONS:-}" ] && [ -z "${BNN_SANITIZED:-}" ]; then
  # (the count is printed to 0.1 MiB)
  peak_within "matrix-free low rank's peak memory" "$(mib_plus "$mf_need" 0 0.05)" "$(mib_plus "$mf_need" 32 0.05)" \
    "$BNN" laplace -m "$T/w500.safetensors" --subset all --hessian lowrank --rank 1 -o "$T/w500_lr.safetensors"
fi
# Training counts saving too: an IVON run's save (the model, its std, Hessian and, in a checkpoint,
# momentum) once copied every tensor into the writer and formed a whole posterior, a peak of 1.8x
# the count (a run that passed the check trained, then failed to save). Given just its count, a run
# with a checkpoint stays within it and 32 MiB for the program (16 MB per copied array here).
expect_fail "ivon training: its count" "ivon training of 4012002 parameters needs about [0-9.]* MiB" \
  env BNN_MEMORY_LIMIT=16M "$BNN" train --data moons --model mlp:2-2000-2000-2 --method ivon --epochs 1 -q -o "$T/never.safetensors"
tr_need=$(sed -n 's/.* needs about \([0-9.]*\) MiB .*/\1/p' "$T/err")
if [ -z "${ASAN_OPTIONS:-}" ] && [ -z "${BNN_SANITIZED:-}" ]; then
  # (the count is printed to 1 MiB; one thread: the 32 MiB do not grow with the cores)
  peak_within "ivon training's peak memory" "$(mib_plus "$tr_need" 0 0.5)" "$(mib_plus "$tr_need" 32 0.5)" \
    "$BNN" train --data moons --model mlp:2-2000-2000-2 --method ivon --epochs 1 --threads 1 \
    --checkpoint "$T/w2k_ck.safetensors" -q -o "$T/w2k.safetensors"
fi
expect_fail "von beyond BNN_MEMORY_LIMIT" "over the last layer's .* needs .*, more than BNN_MEMORY_LIMIT's 64 KiB" env BNN_MEMORY_LIMIT=64K "$BNN" von -m "$T/map.safetensors" -o "$T/never.safetensors"
expect_fail "laplace, BNN_MEMORY_LIMIT no size" "BNN_MEMORY_LIMIT is 'abc', not a size" env BNN_MEMORY_LIMIT=abc "$BNN" laplace -m "$T/map.safetensors" -o "$T/never.safetensors"

# One class present is refused whatever its number (labels all 2 made a 3-output model, trained).
printf 'a,b,y\n0.1,0.2,2\n0.3,0.4,2\n0.5,0.1,2\n' >"$T/one2.csv"
expect_fail "one class, label 2" "one class only (every label is 2)" "$BNN" train --data "csv:$T/one2.csv" -o "$T/never.safetensors"
# calibrate on a calibrated file: "before" is at the file's temperature, not at 1.
run "calibrate a calibrated file" "$BNN" calibrate -m "$T/dh.safetensors" -o "$T/recal.safetensors"
awk '/^validation/ { exit !($3 == $5 + 0 && /before: at the file.s temperature/) }' "$T/out" && ok || bad "calibrate twice: $(grep ^validation "$T/out")"
# A seed in a file must be what train writes (>= 0); a negative one was taken.
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/negseed.safetensors" bnn.seed -1
expect_fail "a negative bnn.seed" "bnn.seed is '-1', not a whole number >= 0" "$BNN" eval -m "$T/negseed.safetensors"
# info refuses (exit 1, after describing the file) the metadata every predicting command refuses;
# it exited 0 on them.
expect_fail "info, a negative bnn.seed" "bnn.seed is '-1', not a whole number >= 0" "$BNN" info "$T/negseed.safetensors"
grep -q '^tensors' "$T/out" && ok || bad "info described nothing before refusing the seed"
# ... and the hold-out and target column that laplace, von, calibrate and eval read.
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/negho.safetensors" bnn.data.holdout -3
expect_fail "info, a negative hold-out" "bnn.data.holdout is '-3', not a whole number >= 0" "$BNN" info "$T/negho.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/tcx.safetensors" bnn.data.target_col x
expect_fail "info, a target column that is no number" "bnn.data.target_col is 'x', not a whole number" "$BNN" info "$T/tcx.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/tabc.safetensors" bnn.temperature abc
expect_fail "info, a temperature that is no number" "bnn.temperature is 'abc', not a positive number" "$BNN" info "$T/tabc.safetensors"
python3 "$(dirname "$0")/st_meta.py" "$T/map.safetensors" "$T/rinv.safetensors" bnn.data.min 300
expect_fail "info, an inverted range" "bnn.data.min (300) is above bnn.data.max" "$BNN" info "$T/rinv.safetensors"
run "info on the file they were made from" "$BNN" info "$T/map.safetensors"
expect_usage "a temperature below a double" "--temperature 4e-324 is too small for a double" "$BNN" eval -m "$T/map.safetensors" --temperature 4e-324

# --ood CSV with a label column drops the column the model was trained with (it dropped the last
# one, a feature, and scored the label as an input).
awk 'BEGIN { srand(5); print "y,a,b"; for (i = 0; i < 60; i++) { a = rand(); b = rand(); printf "%d,%.4f,%.4f\n", (a + b > 1), a, b } }' >"$T/y0.csv"
run "train on column 0" "$BNN" train --data "csv:$T/y0.csv" --target-col 0 --epochs 3 -q -o "$T/y0.safetensors"
awk -F, 'NR > 1 { printf "%s,%.4f,%.4f\n", $1, 3 * $2, 3 * $3 }' "$T/y0.csv" | sed '1i y,a,b' >"$T/ood_y0.csv"
cut -d, -f2,3 "$T/ood_y0.csv" >"$T/ood_ab.csv"
run "eval --ood labelled at column 0" "$BNN" eval -m "$T/y0.safetensors" --ood "csv:$T/ood_y0.csv"
awk '/^csv:.*ood_y0/ { print $2, $3 }' "$T/out" >"$T/ood_lab"
run "eval --ood features only" "$BNN" eval -m "$T/y0.safetensors" --ood "csv:$T/ood_ab.csv"
awk '/^csv:.*ood_ab/ { print $2, $3 }' "$T/out" >"$T/ood_feat"
[ -s "$T/ood_lab" ] && cmp -s "$T/ood_lab" "$T/ood_feat" && ok || bad "OOD CSV label column: $(cat "$T/ood_lab") vs $(cat "$T/ood_feat")"

# A data name or directory that is not UTF-8 (a Latin-1 file system) cannot go into a safetensors
# header: train did every epoch and then failed to save. It now saves without recording it, says
# so, and eval reads the data when given it again.
latin=$(printf 'd\351')
cp "$T/y0.csv" "$T/$latin.csv"
run "train on a Latin-1 file name" "$BNN" train --data "csv:$T/$latin.csv" --target-col 0 --epochs 2 -q -o "$T/latin.safetensors"
# (the file still records the CSV settings, which eval applies to the --data it is given)
grep -q "the data's name is not valid UTF-8.*does not record its data" "$T/err" && ok || bad "no note for a Latin-1 data name: $(cat "$T/err")"
expect_usage "eval, the data unrecorded" "latin.safetensors does not record its data; pass --data SPEC" "$BNN" eval -m "$T/latin.safetensors"
run "eval with the Latin-1 name given" "$BNN" eval -m "$T/latin.safetensors" --data "csv:$T/$latin.csv"
mkdir -p "$T/$latin"
cp "$T/y0.csv" "$T/$latin/y.csv"
(cd "$T/$latin" && "$BNN" train --data csv:y.csv --target-col 0 --epochs 2 -q -o "$T/latin_dir.safetensors") 2>"$T/err" && ok || bad "train in a Latin-1 directory: $(cat "$T/err")"
grep -q "the current directory, where csv:y.csv's relative names were read, has a name that is not valid UTF-8" "$T/err" && ok || bad "no note for a Latin-1 directory: $(cat "$T/err")"
(cd "$T/$latin" && "$BNN" laplace -m "$T/latin_dir.safetensors" -q -o "$T/latin_la.safetensors") >/dev/null 2>"$T/err" && ok || bad "laplace on it: $(cat "$T/err")"
[ -s "$T/latin_la.safetensors" ] && ok || bad "laplace in a Latin-1 directory wrote nothing"

# -o through a dangling link to the checkpoint: the first epoch created the link's target as the
# checkpoint and the final save wrote the model over it (exit 0).
ln -sf "$T/ck_target.safetensors" "$T/ck_link.safetensors"
expect_usage "-o a dangling link to the checkpoint" "-o and --checkpoint name the same file" \
  "$BNN" train --data moons --epochs 2 -q -o "$T/ck_link.safetensors" --checkpoint "$T/ck_target.safetensors"
[ ! -e "$T/ck_target.safetensors" ] && ok || bad "the run went on with -o through a link to its checkpoint"

# -q keeps notes: a run without -o saves nothing, and says so (it said nothing under -q).
run "train without -o, -q" "$BNN" train --data moons --epochs 1 -q
grep -q "note: no --output given, so the model was not saved" "$T/err" && ok || bad "-q hid the note that nothing was saved"

# A checkpoint is a file to resume from: the standard output ran every epoch's together, and
# /dev/null made "resume with --resume /dev/null" (exit 0 both).
expect_usage "--checkpoint -" "--checkpoint -: a checkpoint is a file to resume from, not the standard output" \
  "$BNN" train --data moons --epochs 2 -q --checkpoint -
expect_usage "--checkpoint /dev/null" "--checkpoint /dev/null: a checkpoint is a file to resume from, not a device or pipe" \
  "$BNN" train --data moons --epochs 2 -q --checkpoint /dev/null --stop-after 1
"$BNN" train --data moons --epochs 2 -q --checkpoint /dev/stdout >"$T/ck_stdout" 2>"$T/err"
[ $? -eq 2 ] && grep -q "not the standard output or error" "$T/err" && ok || bad "--checkpoint /dev/stdout to a file: $(cat "$T/err")"
"$BNN" train --data moons --epochs 1 -q -o - 1<"$T/err" 2>"$T/err2"
[ $? -eq 2 ] && grep -q -- "-o -: the standard output is open for reading only" "$T/err2" && ok || bad "-o - to a read-only stdout: $(cat "$T/err2")"
ln -sf "$T/loop_b" "$T/loop_a"; ln -sf "$T/loop_a" "$T/loop_b"
expect_usage "-o and --checkpoint through a link loop" "-o and --checkpoint name the same file" \
  "$BNN" train --data moons --epochs 1 -q -o "$T/loop_a" --checkpoint "$T/loop_b"

# A run that diverges after its checkpoint was saved names what the checkpoint holds.
expect_fail "diverged, with a checkpoint" "dv.safetensors was not written (the checkpoint .*dv_ck.safetensors holds the run after epoch 2, which may have been diverging already)" \
  "$BNN" train --data moons --method sgd --lr 1e3 --epochs 3 -q --checkpoint "$T/dv_ck.safetensors" -o "$T/dv.safetensors"
# ... without -o too, and for a resumed run, whose checkpoint holds the epoch it was resumed at.
expect_fail "diverged, a checkpoint and no -o" "training diverged.* (the checkpoint .*dv_ck2.safetensors holds the run after epoch 2, which may" \
  "$BNN" train --data moons --method sgd --lr 1e3 --epochs 3 -q --checkpoint "$T/dv_ck2.safetensors"
"$BNN" train --data moons --method sgd --lr 1e3 --epochs 3 --stop-after 2 -q --checkpoint "$T/dv_ck3.safetensors" 2>/dev/null
expect_fail "diverged after --resume" "training diverged.* (the checkpoint .*dv_ck3.safetensors holds the run after epoch 2, which may" \
  "$BNN" train --resume "$T/dv_ck3.safetensors" -q --checkpoint "$T/dv_ck3.safetensors"

# -o - with the standard output closed is refused before training (it trained, then failed).
"$BNN" train --data moons --epochs 1 -q -o - >&- 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "-o -: the standard output is closed" "$T/err" && ok || bad "-o - to a closed stdout: $(cat "$T/err")"
if command -v script >/dev/null; then
  script -qc "$BNN train --data moons --epochs 1 -q -o -" /dev/null >"$T/tty_out" 2>&1
  grep -q "the standard output is a terminal" "$T/tty_out" && ok || bad "-o - to a terminal: $(head -c 300 "$T/tty_out")"
fi

# --resume with --epochs below the warm-up names the checkpoint's warm-up (it said only that
# "warm-up epochs must be between 0 and the number of epochs", exit 1).
"$BNN" train --data moons --warmup-epochs 5 --epochs 10 --stop-after 2 -q --checkpoint "$T/warm_ck.safetensors" 2>/dev/null
expect_usage "--resume --epochs below the warm-up" "warm_ck.safetensors warms up over 5 epochs; --epochs 3 is fewer" \
  "$BNN" train --resume "$T/warm_ck.safetensors" --epochs 3 -q -o "$T/warm.safetensors"

# Targets far beyond the gaussian likelihood's noise are noted (a loss of 1e12 and no interval
# coverage were saved without a word); targets on the noise's scale are not.
awk 'BEGIN { srand(1); print "x,y"; for (i = 0; i < 100; i++) { x = rand(); printf "%.4f,%.1f\n", x, 1e6 * x + 1e5 * rand() } }' >"$T/bigy.csv"
run "train on targets of 1e6" "$BNN" train --data "csv:$T/bigy.csv" --task regression --epochs 1 -q -o "$T/bigy.safetensors"
grep -q "note: the targets have a root mean square of 6.19e+05 against the gaussian likelihood's noise sigma 1" "$T/err" && ok || bad "no note for targets of 1e6: $(cat "$T/err")"
# By their size about 0, not their spread (years of 2000 +- 20 trained to an RMSE of 2000); the
# bounds are 1000 sigma and sigma/1000.
for c in "2000 20 note" "500 20 none" "3e-5 1e-5 note" "2e-3 1e-4 none"; do
  set -- $c
  awk -v m="$1" -v s="$2" 'BEGIN { srand(3); print "x,y"; for (i = 0; i < 50; i++) { x = rand(); printf "%.4f,%.9g\n", x, m + s * (2 * x - 1) } }' >"$T/scale.csv"
  run "train on targets of $1" "$BNN" train --data "csv:$T/scale.csv" --task regression --epochs 1 -q -o "$T/scale.safetensors"
  if [ "$3" = note ]; then
    grep -q "note: the targets have a root mean square of" "$T/err" && ok || bad "no note for targets of $1: $(cat "$T/err")"
  else
    grep -q "root mean square" "$T/err" && bad "a note for targets of $1: $(cat "$T/err")" || ok
  fi
done
# Several targets: the one off the scale is named (an npy with a second column of 1e5).
python3 -c "
import struct, sys
def npy(path, shape, vals):
    h = \"{'descr': '<f4', 'fortran_order': False, 'shape': %s, }\" % (shape,)
    h += ' ' * (63 - (10 + len(h)) % 64) + '\\n'
    open(path, 'wb').write(b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(h)) + h.encode() + struct.pack('<%df' % len(vals), *vals))
n = 40
npy(sys.argv[1], (n, 1), [i / n for i in range(n)])
npy(sys.argv[2], (n, 2), [v for i in range(n) for v in (i / n, 1e5 + i)])" "$T/mx.npy" "$T/my.npy"
run "train on two targets, the second of 1e5" "$BNN" train --data "npy:$T/mx.npy,$T/my.npy" --task regression --epochs 1 -q -o "$T/mt.safetensors"
grep -q "note: target 2 of 2 have a root mean square of 1e+05" "$T/err" && ok || bad "the second target not named: $(cat "$T/err")"
run "train on sine-gap" "$BNN" train --data sine-gap --epochs 1 -q -o "$T/sg.safetensors"
grep -q "root mean square" "$T/err" && bad "a scale note for sine-gap's targets" || ok
run "train on targets of 1e6 with their noise" "$BNN" train --data "csv:$T/bigy.csv" --task regression --noise 1e5 --epochs 1 -q -o "$T/bigy2.safetensors"
grep -q "root mean square" "$T/err" && bad "a scale note with --noise near the spread" || ok

cli_done
