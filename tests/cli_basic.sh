#!/usr/bin/env bash
# End-to-end tests of the bnn command: a small training run, eval (table and JSON), info, and
# every kind of bad input the issue names. Each failure must be one line on stderr, a non-zero
# exit that is not a crash (< 128), and no output file left behind.
# usage: cli_basic.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"




# --- help and usage
run "bnn --help" "$BNN" --help
grep -q "train" "$T/out" && ok || bad "--help lists train"
for c in train laplace von eval predict plot compare calibrate info; do
  run "bnn $c --help" "$BNN" $c --help
  grep -q "usage: bnn $c" "$T/out" && ok || bad "$c --help shows usage"
  run "bnn help $c" "$BNN" help $c
  grep -q "usage: bnn $c" "$T/out" && ok || bad "bnn help $c shows $c's usage"
done
expect_fail "unknown command" "unknown command" "$BNN" frobnicate
expect_fail "unknown option" "unknown option '--frob' (see 'bnn train --help')" "$BNN" train --data moons --frob 3
# A near miss names the option meant: one or two edits away, or a name that begins with the other.
expect_usage "misspelt option" "unknown option '--sed': did you mean --seed?" "$BNN" train --data moons --sed 3
expect_usage "misspelt option with a value" "unknown option '--sample': did you mean --samples?" "$BNN" eval -m x --sample=3
expect_usage "another command's name" "unknown option '--prior-precision': did you mean --prior?" "$BNN" laplace -m x --prior-precision 3 -o y
expect_usage "a beginning before a near name" "unknown option '--lr-s': did you mean --lr-schedule?" "$BNN" train --data moons --lr-s cosine
expect_usage "a short name is near nothing" "unknown option '--x' (see 'bnn train --help')" "$BNN" train --data moons --x 3
expect_fail "bad number" "expects a number" "$BNN" train --data moons --lr abc
expect_fail "missing --data" "--data is required" "$BNN" train

# --- a real run: train, eval (table + JSON), info
run "train moons" "$BNN" train --data moons --epochs 20 --lr 1e-2 --batch-size 32 -q -o "$T/moons.safetensors"
[ -f "$T/moons.safetensors" ] && ok || bad "model file written"
run "eval moons" "$BNN" eval -m "$T/moons.safetensors" --json "$T/moons.json"
cp "$T/out" "$T/eval_m.txt"
acc=$(awk '/^accuracy/ {print $2}' "$T/out")
num_holds 'a > 0.95' a="$acc" && ok || bad "moons test accuracy $acc <= 0.95"
grep -q '"accuracy":' "$T/moons.json" && grep -q '"nll":' "$T/moons.json" && ok || bad "JSON has accuracy and nll"
# The model alone, without -m, as the usage line shows: the same report.
run "eval, the model alone" "$BNN" eval "$T/moons.safetensors"
cmp -s "$T/out" "$T/eval_m.txt" && ok || bad "eval FILE differs from eval -m FILE"
expect_usage "eval, two models" "unexpected argument" "$BNN" eval -m "$T/moons.safetensors" "$T/moons.safetensors"
run "info" "$BNN" info "$T/moons.safetensors"
grep -q "mlp:2-50-50-2:tanh" "$T/out" && grep -q "0.weight" "$T/out" && ok || bad "info shows model and tensors"
# The training features' range travels in the file (for the scaling note of cli_npy.sh): moons'
# two features span about -1.2 .. 2.2.
lo=$(val bnn.data.min) hi=$(val bnn.data.max)
num_holds 'a > -1.5 && a < -0.9 && b > 1.9 && b < 2.5' a="${lo:-x}" b="${hi:-x}" && ok ||
  bad "bnn.data.min / max of moons: '$lo' '$hi'"
# predict without --data or --input reads the model's own data's test split, as eval does.
run "predict, the model's data" "$BNN" predict -m "$T/moons.safetensors" -o "$T/p_own.csv"
run "predict --data moons" "$BNN" predict -m "$T/moons.safetensors" --data moons -o "$T/p_given.csv"
cmp -s "$T/p_own.csv" "$T/p_given.csv" && ok || bad "predict without --data predicted other data"
[ "$(wc -l <"$T/p_own.csv")" -gt 100 ] && ok || bad "predict without --data: $(wc -l <"$T/p_own.csv") lines"
grep -q "scaled" "$T/err" && bad "a scaling note for the model's own data" || ok
# The file follows the safetensors format as its reference reader checks it, with PyTorch's names.
if command -v python3 >/dev/null; then
  run "safetensors format" python3 "$(dirname "$0")/st_validate.py" "$T/moons.safetensors" \
    0.weight=50,2 0.bias=50 2.weight=50,50 4.weight=2,50 4.bias=2
  # The checker itself rejects a file with a hole after the last tensor.
  cp "$T/moons.safetensors" "$T/hole.safetensors" && printf 'abcd' >>"$T/hole.safetensors"
  python3 "$(dirname "$0")/st_validate.py" "$T/hole.safetensors" 2>/dev/null && bad "checker accepted a hole" || ok
  # A PyTorch checkpoint may hold its weights as F64, F16 or BF16: each loads, converted to F32,
  # and predicts exactly as an F32 file holding the same (rounded) values.
  for dt in F64 F16 BF16; do
    run "weights as $dt" python3 "$HERE/st_dtype.py" "$T/moons.safetensors" "$T/w_$dt.safetensors" $dt
    run "weights rounded through $dt" python3 "$HERE/st_dtype.py" "$T/moons.safetensors" "$T/w_${dt}32.safetensors" $dt --as-f32
    run "predict from $dt" "$BNN" predict -m "$T/w_$dt.safetensors" --data moons -o "$T/p_$dt.csv"
    run "predict from $dt values in F32" "$BNN" predict -m "$T/w_${dt}32.safetensors" --data moons -o "$T/p_${dt}32.csv"
    cmp -s "$T/p_$dt.csv" "$T/p_${dt}32.csv" && ok || bad "weights read from $dt are not the F32 values they hold"
    run "info $dt" "$BNN" info "$T/w_$dt.safetensors"
    grep -q "0.weight  *$dt  *\[50, 2\]" "$T/out" && ok || bad "info shows the $dt dtype: $(grep 0.weight "$T/out")"
  done
  run "predict from F32" "$BNN" predict -m "$T/moons.safetensors" --data moons -o "$T/p_F32.csv"
  cmp -s "$T/p_F64.csv" "$T/p_F32.csv" && ok || bad "F32 -> F64 -> F32 changed a weight"
  cmp -s "$T/p_F16.csv" "$T/p_F32.csv" && bad "F16 rounding changed no prediction digit (the test cannot tell)" || ok
  # A double beyond float's range is named, not read as Inf.
  python3 -c "
import struct, sys
sys.path.insert(0, sys.argv[3])
from st_meta import read_st, write_st
h, d = read_st(sys.argv[1])
lo = h['2.weight']['data_offsets'][0]
d = d[:lo + 8 * 7] + struct.pack('<d', 1e39) + d[lo + 8 * 8:]
write_st(sys.argv[2], h, d)" "$T/w_F64.safetensors" "$T/w_big.safetensors" "$HERE"
  expect_fail "F64 weight beyond float" "tensor '2.weight' holds 1e+39 at 7, beyond a float's range" \
    "$BNN" eval -m "$T/w_big.safetensors"
  # What a PyTorch user's file may hold besides bnn's weights, and what it may get wrong. st_edit:
  # IN OUT PYTHON, where PYTHON changes h (the header: tensors and __metadata__) and d (the data).
  st_edit() {
    python3 -c "
import struct, sys
sys.path.insert(0, sys.argv[3])
from st_meta import read_st, write_st
h, d = read_st(sys.argv[1])
exec(sys.argv[4])
write_st(sys.argv[2], h, d)" "$1" "$2" "$HERE" "$3"
  }
  # A tensor of any safetensors dtype beside the weights is read and ignored (a BOOL mask made the
  # whole file unreadable).
  st_edit "$T/moons.safetensors" "$T/mask.safetensors" "h['mask'] = {'dtype': 'BOOL', 'shape': [3], 'data_offsets': [len(d), len(d) + 3]}; d = d + bytes([1, 0, 1])"
  run "a BOOL tensor beside the weights" "$BNN" predict -m "$T/mask.safetensors" --data moons -o "$T/p_mask.csv"
  cmp -s "$T/p_mask.csv" "$T/p_F32.csv" && ok || bad "an extra BOOL tensor changed the predictions"
  # A tensor of a layer the spec does not describe is refused by name: read as the spec, the file
  # would compute another network (a LayerNorm in place of a Tanh, a layer after the last), and
  # did, with exit 0.
  st_edit "$T/moons.safetensors" "$T/ln.safetensors" "h['1.weight'] = {'dtype': 'F32', 'shape': [50], 'data_offsets': [len(d), len(d) + 200]}; d = d + bytes(200)"
  expect_fail "a LayerNorm between the Linear layers" "tensor '1.weight' is of layer 1 of the saved network, where model mlp:2-50-50-2:tanh has a Tanh, which has no tensors: the network has a layer there that bnn does not model" \
    "$BNN" predict -m "$T/ln.safetensors" --data moons -o "$T/p_ln.csv"
  [ -e "$T/p_ln.csv" ] && bad "predict wrote an output for a network it does not model" || ok
  st_edit "$T/moons.safetensors" "$T/bn5.safetensors" "h['5.running_mean'] = {'dtype': 'F32', 'shape': [2], 'data_offsets': [len(d), len(d) + 8]}; d = d + bytes(8)"
  expect_fail "a layer after the last" "tensor '5.running_mean' is of layer 5 of the saved network, but model mlp:2-50-50-2:tanh ends at layer 4: is bnn.model complete?" \
    "$BNN" eval -m "$T/bn5.safetensors"
  # Names with a prefix (model.0.weight) are named in the message, with what bnn reads.
  st_edit "$T/moons.safetensors" "$T/prefix.safetensors" "h = {('model.' + k if k != '__metadata__' else k): v for k, v in h.items()}"
  expect_fail "prefixed names" "tensor '0.weight' of model mlp:2-50-50-2:tanh is missing (it holds 'model.0.weight'.*without a prefix)" \
    "$BNN" eval -m "$T/prefix.safetensors"
  # Long module names keep their ends (weight or bias) in the message, and the explanation whole.
  st_edit "$T/moons.safetensors" "$T/longname.safetensors" "h = {('backbone.encoder.block_0.linear_projection_layer.' + k if k != '__metadata__' else k): v for k, v in h.items()}"
  expect_fail "long prefixed names" "(it holds 'backbone.encoder.block_0...ear_projection_layer.0.weight', .*without a prefix)" \
    "$BNN" eval -m "$T/longname.safetensors"
  run "bias-free layer file" python3 "$HERE/st_drop.py" "$T/moons.safetensors" "$T/nobias.safetensors" 0.bias
  expect_fail "a bias-free Linear" "has '0.weight' but no '0.bias': bnn's Linear layers have biases" \
    "$BNN" eval -m "$T/nobias.safetensors"
  # A later layer's bias missing is named too (the message counted values only).
  run "second layer bias-free" python3 "$HERE/st_drop.py" "$T/moons.safetensors" "$T/nobias2.safetensors" 2.bias
  expect_fail "a bias-free second Linear" "has '2.weight' but no '2.bias'" "$BNN" eval -m "$T/nobias2.safetensors"
  st_edit "$T/moons.safetensors" "$T/nometa.safetensors" "h['__metadata__'] = {}"
  expect_fail "no bnn.model" "no 'bnn.model' in __metadata__; for a PyTorch state dict save it with metadata=" \
    "$BNN" eval -m "$T/nometa.safetensors"
  st_edit "$T/moons.safetensors" "$T/badshape.safetensors" "h['0.weight']['shape'] = [2, 50]"
  expect_fail "a transposed weight" "should be a float tensor (F32, F64, F16 or BF16) of shape \[50, 2\], as model mlp:2-50-50-2:tanh needs (it is F32 \[2, 50\])" \
    "$BNN" eval -m "$T/badshape.safetensors"
  st_edit "$T/moons.safetensors" "$T/nanw.safetensors" "lo = h['2.bias']['data_offsets'][0]; d = d[:lo + 12] + struct.pack('<f', float('nan')) + d[lo + 16:]"
  expect_fail "a NaN weight" "tensor '2.bias' holds NaN at 3 (parameter 2653 of the flat weights)" \
    "$BNN" eval -m "$T/nanw.safetensors"
  # One output: a softmax over it would be one certain class; the metadata must say what it is.
  run "one-output network" "$BNN" train --data sine-gap --model mlp:1-8-1 --epochs 1 -q -o "$T/one.safetensors"
  st_edit "$T/one.safetensors" "$T/one_cat.safetensors" "h['__metadata__'] = {'bnn.model': 'mlp:1-8-1'}"
  expect_fail "one output read as a softmax" "has one output, which a categorical likelihood reads as one certain class: for a single-logit binary classifier add bnn.lik=bernoulli" \
    "$BNN" predict -m "$T/one_cat.safetensors" --data sine-gap -o "$T/never.csv"
  # bnn.lik without bnn.task: the likelihood says the task (it was read as classification).
  st_edit "$T/one.safetensors" "$T/one_lik.safetensors" "h['__metadata__'] = {'bnn.model': 'mlp:1-8-1', 'bnn.lik': 'gaussian'}"
  run "bnn.lik gaussian without bnn.task" "$BNN" predict -m "$T/one_lik.safetensors" --data sine-gap -o "$T/p_one.csv"
  [ "$(head -1 "$T/p_one.csv")" = "mean,var" ] && ok || bad "a gaussian file without bnn.task predicts a regression: $(head -1 "$T/p_one.csv")"
else
  echo "note: python3 not found; safetensors format check skipped" >&2
fi
run "train sine-gap" "$BNN" train --data sine-gap --epochs 50 --lr 1e-2 --batch-size 16 --noise 0.1 -q -o "$T/sine.safetensors"
# A batch larger than the data (64 points) is the data, and the header says so.
run "train with a batch larger than the data" "$BNN" train --data sine-gap --epochs 1 -o "$T/sine_all.safetensors"
grep -q "64 examples, adamw, 1 epoch, batch 64 (all the examples), lr" "$T/err" && ok || bad "header of a batch larger than the data: $(head -1 "$T/err")"
run "eval sine-gap" "$BNN" eval -m "$T/sine.safetensors" --json "$T/sine.json"
grep -q '"rmse":' "$T/sine.json" && ok || bad "regression JSON has rmse"

# --- CSV data
printf 'a,b,label\n0.1,0.2,0\n0.9,0.8,1\n0.2,0.1,0\n0.8,0.9,1\n' >"$T/good.csv"
run "train csv" "$BNN" train --data "csv:$T/good.csv" --model mlp:2-4-2 --epochs 2 -q -o "$T/csv.safetensors"
printf 'a,b,label\n0.1,0.2,0\n0.9,0.8\n' >"$T/cols.csv"
expect_fail "csv wrong column count" "line 3" "$BNN" train --data "csv:$T/cols.csv" --model mlp:2-4-2 -o "$T/never.safetensors"
printf 'a,b,label\n0.1,zz,0\n' >"$T/nan.csv"
expect_fail "csv non-number" "zz\|number" "$BNN" train --data "csv:$T/nan.csv" --model mlp:2-4-2 -o "$T/never.safetensors"
printf '0.1,nan,0\n' >"$T/nan2.csv"
expect_fail "csv NaN" "NaN\|nan\|finite" "$BNN" train --data "csv:$T/nan2.csv" --model mlp:2-4-2 -o "$T/never.safetensors"
: >"$T/empty.csv"
expect_fail "csv empty" "empty\|no data" "$BNN" train --data "csv:$T/empty.csv" --model mlp:2-4-2 -o "$T/never.safetensors"
expect_fail "csv missing" "missing.csv" "$BNN" train --data "csv:$T/missing.csv" --model mlp:2-4-2 -o "$T/never.safetensors"

# --- bad model specs, missing and corrupted model files
expect_usage "unknown model spec" "unknown model spec" "$BNN" train --data moons --model cnn:3-4 -o "$T/never.safetensors"
expect_usage "wrong input width" "features" "$BNN" train --data moons --model mlp:5-4-2 -o "$T/never.safetensors"
# Options that would change nothing, and a likelihood that does not fit the model: usage errors.
expect_usage "dropout without a hidden layer" "mlp:2-2:dropout=0.5 has no hidden layer" "$BNN" train --data moons --model mlp:2-2:dropout=0.5 -o "$T/never.safetensors"
expect_usage "an activation without a hidden layer" "mlp:2-2:gelu has no hidden layer" "$BNN" train --data moons --model mlp:2-2:gelu -o "$T/never.safetensors"
expect_usage "bernoulli on two outputs" "a bernoulli likelihood needs 1 output (the logit), but model mlp:2-50-2 has 2" "$BNN" train --data moons --lik bernoulli --model mlp:2-50-2 -o "$T/never.safetensors"
expect_usage "a seed beyond 64 bits" "--seed 18446744073709551615 is beyond a 64-bit signed integer's range (-2^63 to 2^63 - 1)" "$BNN" train --data moons --seed 18446744073709551615 -o "$T/never.safetensors"
expect_usage "not an integer" "--seed expects an integer, got '1.5'" "$BNN" train --data moons --seed 1.5 -o "$T/never.safetensors"
printf 'a,b,y\n1,2,0\n2,3,99999999999\n' >"$T/biglabel.csv"
expect_fail "a class label too large" "line 3, column 3 (the target, --target-col 2): class label '99999999999' is beyond the largest class label" "$BNN" train --data "csv:$T/biglabel.csv" -o "$T/never.safetensors"
# The target column as --target-col counts it (from 0) beside the editor's column (from 1).
printf 'a,b,y\n0.5,2,0\n' >"$T/floatfirst.csv"
expect_fail "a float target read as a label" "line 2, column 1 (the target, --target-col 0): '0.5' is not a class label" "$BNN" train --data "csv:$T/floatfirst.csv" --target-col 0 -o "$T/never.safetensors"
printf 'a,b,label,\n1,2,0,\n2,3,1,\n' >"$T/trailing.csv"
expect_fail "a header with a trailing comma" "line 1, column 1: 'a' is not a number (a header with an empty field is not taken for one: a trailing delimiter? remove it from every line that has it)" "$BNN" train --data "csv:$T/trailing.csv" -o "$T/never.safetensors"
printf 'a,,label\n1,2,0\n2,3,1\n' >"$T/noname.csv"
expect_fail "a header with an empty name" "(a header with an empty field is not taken for one: name every column, or pass --header)" "$BNN" train --data "csv:$T/noname.csv" -o "$T/never.safetensors"
run "the same with --header" "$BNN" train --data "csv:$T/noname.csv" --header --epochs 1 -q -o "$T/noname.safetensors"
# A first data row with a missing value is not taken for a header without its name.
printf '1,NA,,0\n2,3,4,1\n' >"$T/missing.csv"
expect_fail "a missing value on the first row" "line 1, column 2: 'NA' is not a number$" "$BNN" train --data "csv:$T/missing.csv" -o "$T/never.safetensors"
expect_usage "ess 0" "--ess must be positive (leave it out" "$BNN" train --data moons --method ivon --ess 0 -o "$T/never.safetensors"
# A recipe's one warm-up epoch then cosine, scaled down to one epoch, is all warm-up: accepted
# (bench/torch_ref.py --epochs 1 runs it).
run "cosine all warm-up" "$BNN" train --data moons --lr-schedule cosine --warmup-epochs 1 --epochs 1 -q -o "$T/allwarm.safetensors"
expect_fail "missing model file" "nonexistent.safetensors" "$BNN" eval -m "$T/nonexistent.safetensors"
# A header length far beyond the file.
{ printf '\xff\xff\x00\x00\x00\x00\x00\x00'; printf '{}'; } >"$T/lies.safetensors"
expect_fail "header longer than file" "lies.safetensors" "$BNN" eval -m "$T/lies.safetensors"
# A tensor whose data_offsets run past the end of the file.
hdr='{"__metadata__":{"bnn.model":"mlp:2-50-50-2:tanh"},"0.weight":{"dtype":"F32","shape":[50,2],"data_offsets":[0,400]}}'
{ printf "\\x$(printf %02x ${#hdr})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$hdr"; head -c 40 /dev/zero; } >"$T/short.safetensors"
expect_fail "tensor past end of file" "short.safetensors" "$BNN" eval -m "$T/short.safetensors"
# A valid file whose header was overwritten with junk.
cp "$T/moons.safetensors" "$T/junk.safetensors"
printf 'XXXXXXXXXXXX' | dd of="$T/junk.safetensors" bs=1 seek=12 conv=notrunc 2>/dev/null
expect_fail "corrupted header JSON" "junk.safetensors" "$BNN" eval -m "$T/junk.safetensors"
expect_fail "info on corrupted file" "junk.safetensors" "$BNN" info "$T/junk.safetensors"

# --- Fashion-MNIST files: truncated and corrupted IDX (through BNN_FMNIST_DIR)
mkdir -p "$T/fm"
printf '\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x1c\x00\x00\x00\x1c' >"$T/fm/t10k-images-idx3-ubyte"
head -c 1000 /dev/zero >>"$T/fm/t10k-images-idx3-ubyte"          # 3 images need 2352 bytes
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x00\x01\x02' >"$T/fm/t10k-labels-idx1-ubyte"
BNN_FMNIST_DIR="$T/fm" expect_fail "truncated IDX" "t10k-images" "$BNN" eval -m "$T/moons.safetensors" --data fmnist
printf '\x00\x00\x08\x07\x00\x00\x00\x03' >"$T/fm/t10k-images-idx3-ubyte"
BNN_FMNIST_DIR="$T/fm" expect_fail "corrupted IDX magic" "t10k-images" "$BNN" eval -m "$T/moons.safetensors" --data fmnist
BNN_FMNIST_DIR="$T/none" expect_fail "missing fmnist" "dataset-fashion-mnist" "$BNN" eval -m "$T/moons.safetensors" --data fmnist

# --- a model's data with a relative path is found from any directory (bnn.data.dir)
mkdir -p "$T/rel/sub" "$T/away"
printf 'a,b,y\n0,1,0\n1,0,1\n0.2,0.9,0\n0.8,0.1,1\n0.1,0.7,0\n0.9,0.3,1\n' >"$T/rel/sub/d.csv"
(cd "$T/rel/sub" && "$BNN" train --data csv:d.csv --model mlp:2-4-2 --epochs 2 --stop-after 1 \
   --checkpoint ck.st -q -o m.st) && ok || bad "train on a relative CSV path"
(cd "$T/rel/sub" && "$BNN" train --data csv:d.csv --model mlp:2-4-2 --epochs 2 -q -o full.st) && ok ||
  bad "train on a relative CSV path, whole"
(cd "$T/rel/sub" && "$BNN" eval -m m.st >"$T/here.txt" 2>"$T/err") && [ ! -s "$T/err" ] && ok ||
  bad "eval where it was trained: $(cat "$T/err")"
(cd "$T/away" && "$BNN" eval -m ../rel/sub/m.st >"$T/away.txt" 2>"$T/err") && ok ||
  bad "eval from another directory: $(cat "$T/err")"
diff <(grep -v '^model' "$T/here.txt") <(grep -v '^model' "$T/away.txt") >/dev/null && ok ||
  bad "eval from another directory reports otherwise"
(cd "$T/away" && "$BNN" train --resume ../rel/sub/ck.st -q -o r.st 2>"$T/err") && ok ||
  bad "resume from another directory: $(cat "$T/err")"
cmp -s "$T/away/r.st" "$T/rel/sub/full.st" && ok || bad "resumed elsewhere: not the uninterrupted run's file"
(cd "$T/away" && "$BNN" laplace -m ../rel/sub/m.st -q -o la.st >/dev/null 2>"$T/err") && ok ||
  bad "laplace from another directory: $(cat "$T/err")"
# ... and its outputs still may not overwrite it (expect_* in this shell: their counts)
sub=$(cd "$T/rel/sub" && pwd -P)
cd "$T/away" || exit 1
expect_usage "output over the recorded data" "d.csv" "$BNN" laplace -m ../rel/sub/m.st -o ../rel/sub/d.csv
[ "$(head -1 "$T/rel/sub/d.csv")" = "a,b,y" ] && ok || bad "the data was overwritten"
# A relative --data is this directory's, never looked up under the model's.
expect_fail "--data is the current directory's" "^bnn eval: d.csv: cannot open: No such file or directory$" "$BNN" eval -m ../rel/sub/m.st --data csv:d.csv
# The model's own data named by another path from elsewhere is still its own: its hold-out (2 of
# the 6 rows) stays out of a fit.
(cd "$T/rel/sub" && "$BNN" train --data csv:d.csv --model mlp:2-4-2 --epochs 2 --holdout 2 -q -o mh.st) && ok || bad "train with a hold-out"
run "laplace on the model's data named absolutely" "$BNN" laplace -m ../rel/sub/mh.st --data "csv:$sub/d.csv" -o la2.st
grep -q "^data       4 examples" "$T/out" && ok || bad "the model's own data by another name: $(grep '^data' "$T/out")"
# One file relative, one absolute (csv:TRAIN,TEST).
cp "$sub/d.csv" "$T/test.csv"
(cd "$sub" && "$BNN" train --data "csv:d.csv,$T/test.csv" --model mlp:2-4-2 --epochs 1 -q -o mixed.st) && ok || bad "train on a mixed pair"
run "eval a mixed pair from elsewhere" "$BNN" eval -m ../rel/sub/mixed.st
mv "$T/rel/sub" "$T/rel/moved"
expect_fail "recorded data gone" "d.csv: cannot open: No such file or directory (the data ../rel/moved/m.st was trained on, in $sub; give --data SPEC)" \
  "$BNN" eval -m ../rel/moved/m.st
expect_fail "resume, data gone" "d.csv: cannot open: .*(the data ../rel/moved/ck.st was trained on, in $sub; --data SPEC names it where it is now (its fingerprint is checked))" \
  "$BNN" train --resume ../rel/moved/ck.st -q -o "$T/never.safetensors"
# ... which --data then names: the same run as the uninterrupted one, whose weights it gets.
run "resume with the data moved" "$BNN" train --resume ../rel/moved/ck.st --data csv:../rel/moved/d.csv -q -o "$T/away/r2.st"
"$BNN" eval -m "$T/away/r2.st" --data csv:../rel/moved/d.csv | grep -v '^model\|^data' >"$T/r2.txt"
"$BNN" eval -m ../rel/moved/full.st --data csv:../rel/moved/d.csv | grep -v '^model\|^data' >"$T/full.txt"
[ -s "$T/r2.txt" ] && cmp -s "$T/r2.txt" "$T/full.txt" && ok || bad "resumed on the moved data: not the uninterrupted run"
printf 'a,b,y\n1,1,0\n1,0,1\n0.2,0.9,0\n0.8,0.1,1\n0.1,0.7,0\n0.9,0.3,1\n' >"$T/other.csv"
expect_fail "resume on other data" "was trained on other data" "$BNN" train --resume ../rel/moved/ck.st --data "csv:$T/other.csv" -q -o "$T/never.safetensors"
# A checkpoint without a fingerprint (from before it was kept) cannot take --data, and says so.
python3 "$HERE/st_meta.py" ../rel/moved/ck.st "$T/ck_old.st" bnn.state.data_hash
expect_fail "an old checkpoint's data gone" "put it back: the checkpoint keeps no fingerprint" "$BNN" train --resume "$T/ck_old.st" -q -o "$T/never.safetensors"
expect_usage "an old checkpoint with --data" "keeps no fingerprint of its data, so --data cannot be checked" "$BNN" train --resume "$T/ck_old.st" --data csv:../rel/moved/d.csv -q -o "$T/never.safetensors"
cd - >/dev/null || exit 1
(cd "$T/rel/moved" && "$BNN" eval -m m.st >/dev/null 2>"$T/err") && ok || bad "a moved tree, from its new place"
# ... saying which file it read: another directory's file of the same name was read silently.
grep -q -x "note: m.st's data d.csv is no longer in $sub; reading ./d.csv in the current directory (--data SPEC names another)" "$T/err" &&
  ok || bad "a moved tree: no note of the file read: $(cat "$T/err")"
# A posterior fitted there records the directory the data was read in, not the old one: eval finds
# it from elsewhere (laplace once copied the model's bnn.data.dir, which sent eval to $sub).
(cd "$T/rel/moved" && "$BNN" laplace -m m.st -q -o la.st >/dev/null 2>&1) && ok || bad "laplace in a moved tree"
run "eval a posterior fitted in a moved tree, from elsewhere" "$BNN" eval -m "$T/rel/moved/la.st"
"$BNN" info "$T/rel/moved/la.st" | grep -q "bnn.data.dir *$T/rel/moved\$" && ok ||
  bad "a posterior fitted in a moved tree does not record where its data was read"
# ... and so does one fitted there on the same files named by --data.
(cd "$T/rel/moved" && "$BNN" laplace -m m.st --data csv:d.csv -q -o la_data.st >/dev/null 2>&1) && ok || bad "laplace --data in a moved tree"
run "eval it from elsewhere" "$BNN" eval -m "$T/rel/moved/la_data.st"
# A directory with a comma is not recorded (the spec would split there): the data is found where
# it was trained, as before bnn.data.dir.
mkdir -p "$T/a,b"
cp "$T/rel/moved/d.csv" "$T/a,b/d.csv"
(cd "$T/a,b" && "$BNN" train --data csv:d.csv --model mlp:2-4-2 --epochs 1 -q -o m.st && "$BNN" eval -m m.st >/dev/null 2>"$T/err") && ok ||
  bad "train and eval in a directory with a comma"
grep -q "^note: m.st's data d.csv was read in a directory m.st does not record; reading ./d.csv" "$T/err" && ok ||
  bad "the data of a directory that was not recorded: no note: $(cat "$T/err")"
run "info of a model trained in a directory with a comma" "$BNN" info "$T/a,b/m.st"
grep -q "bnn.data.dir" "$T/out" && bad "a directory with a comma was recorded" || ok

# --- a diverging run writes nothing
expect_fail "divergence" "diverged\|NaN\|Inf\|non-finite" "$BNN" train --data moons --method sgd --lr 1e9 --epochs 3 -q -o "$T/diverged.safetensors"
[ ! -e "$T/diverged.safetensors" ] && ok || bad "diverged run left a model file"
[ ! -e "$T/never.safetensors" ] && ok || bad "a failed run left a model file"
ls "$T"/*.tmp.* >/dev/null 2>&1 && bad "temporary files left behind" || ok

cli_done
