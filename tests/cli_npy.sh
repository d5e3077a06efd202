#!/usr/bin/env bash
# End-to-end tests of NumPy input (npy:X,Y and predict --input X.npy) on files written by NumPy
# itself (Debian's python3-numpy): the same numbers whatever dtype, byte order, memory order,
# format version or compression the arrays were saved with, and the same predictions as from the
# same values in a CSV file; regression targets, images, unlabelled OOD arrays; and the files
# NumPy users have that bnn cannot take (.npz, object and structured arrays) refused in one line.
# usage: cli_npy.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"

if ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  echo "FAIL: python3-numpy is missing (make deps installs it)" >&2
  exit 1
fi

/usr/bin/python3 - "$T" <<'PY'
import gzip, sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
n = 300
t = rng.uniform(0, np.pi, n)
lab = (np.arange(n) % 2).astype(np.int64)
x = np.where(lab[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
x = (x + rng.normal(0, 0.1, x.shape)).astype(np.float32)
np.save(f"{d}/x.npy", x)
np.save(f"{d}/y.npy", lab)
np.savetxt(f"{d}/x.csv", x, fmt="%.9g", delimiter=",")
# The same values in other dtypes, byte orders, memory orders, versions and compression.
np.save(f"{d}/x_f8_fortran_be.npy", np.asfortranarray(x.astype(">f8")))
with open(f"{d}/x_v2.npy", "wb") as f:
    np.lib.format.write_array(f, x, version=(2, 0))
with gzip.open(f"{d}/x.npy.gz", "wb") as f:
    np.save(f, x)
np.save(f"{d}/y_u1.npy", lab.astype(np.uint8))
np.save(f"{d}/y_f8_col.npy", lab.astype(np.float64)[:, None])
np.save(f"{d}/y_bool.npy", lab.astype(bool))
# Regression: one target, and two as an (n, 2) float16 array in Fortran order.
np.save(f"{d}/yr.npy", (np.sin(3 * x[:, 0]) + 0.5 * x[:, 1]).astype(np.float64))
np.save(f"{d}/yr2.npy", np.asfortranarray(np.c_[x[:, 0] - x[:, 1], x[:, 0] * x[:, 1]].astype(np.float16)))
# 8 x 8 images (n, h, w) of two kinds, u8 values unscaled.
img = rng.integers(0, 40, size=(200, 8, 8)).astype(np.uint8)
il = (np.arange(200) % 2).astype(np.int32)
img[il == 1, 2:6, 2:6] += 200
np.save(f"{d}/img.npy", img)
np.save(f"{d}/img_y.npy", il)
# The same images as IDX (which bnn scales by 1/255 as torchvision's ToTensor does) and as the
# float32 array a NumPy user makes of them the same way.
with open(f"{d}/img.idx", "wb") as f:
    f.write(bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in img.shape) + img.tobytes())
np.save(f"{d}/img_scaled.npy", img.astype(np.float32) / np.float32(255))
# The two-moons features as 8-bit pixels would be: a model trained on x is shown them ×100.
np.save(f"{d}/x_x100.npy", (x * 100).astype(np.float32))
np.save(f"{d}/ood.npy", rng.uniform(-3, 3, size=(100, 2)).astype(np.float32))
np.save(f"{d}/ood_y.npy", rng.normal(size=100))  # float targets beside OOD inputs: unused
# What bnn refuses.
np.savez(f"{d}/xy.npz", x=x, y=lab)
np.save(f"{d}/obj.npy", np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
np.save(f"{d}/rec.npy", np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
np.save(f"{d}/c8.npy", np.zeros((3, 2), dtype=np.complex64))
np.save(f"{d}/y_short.npy", lab[:-1])
np.save(f"{d}/y_half.npy", lab + 0.5)
xn = x.copy(); xn[5, 1] = np.nan
np.save(f"{d}/x_nan.npy", xn)
xh = x.astype(np.float16); xh[9, 0] = np.inf  # float16's own Inf and NaN encodings
np.save(f"{d}/x_f2_inf.npy", xh)
xh[9, 0] = np.nan
np.save(f"{d}/x_f2_nan.npy", xh)
with open(f"{d}/x_trunc.npy", "wb") as f:
    f.write(open(f"{d}/x.npy", "rb").read()[:-10])
PY
[ $? -eq 0 ] && ok || bad "numpy wrote the test arrays"

# ---------------------------------------------------------------- one set of numbers
run "train npy" "$BNN" train --data "npy:$T/x.npy,$T/y.npy" --epochs 30 -q -o "$T/m.st"
run "info" "$BNN" info "$T/m.st"
grep -q "npy:$T/x.npy,$T/y.npy" "$T/out" && ok || bad "info shows the data spec"
run "eval npy" "$BNN" eval -m "$T/m.st" --json "$T/ref.json"
ref_acc=$(val accuracy)
ref_nll=$(val nll)
num_holds 'a > 0.85' a="$ref_acc" && ok || bad "accuracy $ref_acc on the moons"
for pair in x_f8_fortran_be.npy,y_u1.npy x_v2.npy,y_f8_col.npy x.npy.gz,y_bool.npy; do
  xs=${pair%,*} ys=${pair#*,}
  run "eval $pair" "$BNN" eval -m "$T/m.st" --data "npy:$T/$xs,$T/$ys"
  [ "$(val accuracy)" = "$ref_acc" ] && [ "$(val nll)" = "$ref_nll" ] && ok ||
    bad "$pair: accuracy $(val accuracy), nll $(val nll), expected $ref_acc, $ref_nll"
done
run "predict npy" "$BNN" predict -m "$T/m.st" --input "$T/x.npy" -o "$T/p_npy.csv"
grep -q "scaled" "$T/err" && bad "a scaling note for the training features themselves" || ok
# Two nearby points of a 2-feature problem are narrow by choice, not mis-scaled.
printf '0.5,0.51\n0.52,0.5\n' >"$T/near.csv"
run "predict two nearby points" "$BNN" predict -m "$T/m.st" --input "$T/near.csv" -o "$T/p_near.csv"
grep -q "scaled" "$T/err" && bad "a scaling note for two nearby points: $(cat "$T/err")" || ok
# Inputs scaled otherwise than the training data get a note naming both ranges (the predictions
# are still written: inputs far out may be meant, as OOD data).
run "predict x * 100" "$BNN" predict -m "$T/m.st" --input "$T/x_x100.npy" -o "$T/p_x100.csv"
grep -q "^note: .*x_x100.npy's features range over \[-1[0-9][0-9]\.*[0-9]*, 2[0-9][0-9]\.*[0-9]*\], the data .*m.st was trained on over \[-1\.[0-9]*, 2\.[0-9]*\]: were they scaled the same way" "$T/err" &&
  ok || bad "no scaling note for x * 100: $(cat "$T/err")"
run "eval --ood x * 100" "$BNN" eval -m "$T/m.st" --ood "npy:$T/x_x100.npy"
grep -q "^note: npy:.*x_x100.npy's features range over" "$T/err" && ok || bad "no scaling note for OOD x * 100"
# A Laplace posterior keeps its network's range.
run "laplace of the npy model" "$BNN" laplace -q -m "$T/m.st" -o "$T/la.st"
run "predict x * 100 by Laplace" "$BNN" predict -m "$T/la.st" --input "$T/x_x100.npy" -o "$T/p_x100_la.csv"
grep -q "^note: .*x_x100.npy's features range over .*la.st was trained on" "$T/err" && ok ||
  bad "no scaling note from the Laplace posterior: $(cat "$T/err")"
# compare's models trained on the same data: the note once, not once per model.
cp "$T/m.st" "$T/m_copy.st"
run "compare with x * 100 as OOD" "$BNN" compare -m "$T/m.st" -m "$T/m_copy.st" --ood "npy:$T/x_x100.npy"
[ "$(grep -c "^note: .*x_x100.npy's features range over" "$T/err")" = 1 ] && ok ||
  bad "compare: $(grep -c "^note:" "$T/err") scaling notes for two models of the same data"
run "predict csv" "$BNN" predict -m "$T/m.st" --input "$T/x.csv" -o "$T/p_csv.csv"
run "predict npy.gz" "$BNN" predict -m "$T/m.st" --input "$T/x.npy.gz" -o "$T/p_gz.csv"
cmp -s "$T/p_npy.csv" "$T/p_csv.csv" && ok || bad "predictions from x.npy and x.csv differ"
cmp -s "$T/p_npy.csv" "$T/p_gz.csv" && ok || bad "predictions from x.npy and x.npy.gz differ"
[ "$(wc -l <"$T/p_npy.csv")" -eq 301 ] && ok || bad "300 predictions and a header"
run "ood npy" "$BNN" eval -m "$T/m.st" --ood "npy:$T/ood.npy"
grep -q "npy:$T/ood.npy" "$T/out" && ok || bad "eval reports the OOD set"
# (blanks squeezed: the table's first column is as wide as its longest name)
ood_plain=$(grep "npy:$T/ood.npy" "$T/out" | tr -s ' ')
run "ood npy with float targets" "$BNN" eval -m "$T/m.st" --ood "npy:$T/ood.npy,$T/ood_y.npy"
[ "$(grep "npy:$T/ood.npy" "$T/out" | sed "s|,$T/ood_y.npy||" | tr -s ' ')" = "$ood_plain" ] && ok \
  || bad "OOD inputs with and without targets score differently"
# The reader follows the file's first bytes, not its name: an NPY file without .npy.
cp "$T/x.npy" "$T/x_noext"
run "predict npy without extension" "$BNN" predict -m "$T/m.st" --input "$T/x_noext" -o "$T/p_noext.csv"
cmp -s "$T/p_npy.csv" "$T/p_noext.csv" && ok || bad "an NPY file without .npy predicts differently"
gzip -c "$T/x.npy" >"$T/x_noext_gz"
run "predict npy.gz without extension" "$BNN" predict -m "$T/m.st" --input "$T/x_noext_gz" -o "$T/p_noext_gz.csv"
cmp -s "$T/p_npy.csv" "$T/p_noext_gz.csv" && ok || bad "a gzipped NPY file without a name predicts differently"
# --input -: standard input, told apart by content as a file is (a copy is read).
for f in x.npy x.csv x.npy.gz; do
  "$BNN" predict -m "$T/m.st" --input - -o "$T/p_stdin.csv" -q <"$T/$f" 2>"$T/err" && ok || bad "predict --input - <$f: $(cat "$T/err")"
  cmp -s "$T/p_npy.csv" "$T/p_stdin.csv" && ok || bad "$f through standard input predicts differently"
done
cat "$T/x.npy" | "$BNN" predict -m "$T/m.st" -i - -o - -q >"$T/p_stdin.csv" 2>"$T/err" && ok || bad "predict -i - from a pipe: $(cat "$T/err")"
cmp -s "$T/p_npy.csv" "$T/p_stdin.csv" && ok || bad "NPY piped to -i - predicts differently"
printf '0.1,0.2\n0.3\n' >"$T/ragged.csv"
expect_fail "ragged CSV on standard input" "the standard input, line 2: 1 field, expected 2" sh -c '"$1" predict -m "$2" -i - -o "$3" <"$4"' sh "$BNN" "$T/m.st" "$T/never.csv" "$T/ragged.csv"
[ ! -e "$T/never.csv" ] && ok || bad "a failed prediction from standard input left its output"
# Closed, mkstemp took descriptor 0 and the copy read the empty file it was writing.
expect_usage "closed standard input" "--input -: the standard input is closed" sh -c '"$1" predict -m "$2" -i - -o "$3" <&-' sh "$BNN" "$T/m.st" "$T/never.csv"

# ---------------------------------------------------------------- regression and images
expect_fail "float targets as labels" "the target of row 0 (counting from 0) is .*not a class label.*regression targets? (--task regression reads the targets as numbers)" \
  "$BNN" train --data "npy:$T/x.npy,$T/yr.npy" --epochs 1 -o "$T/r.st"
[ ! -e "$T/r.st" ] && ok || bad "a refused run wrote its output"
run "train regression" "$BNN" train --data "npy:$T/x.npy,$T/yr.npy" --task regression --epochs 50 -q -o "$T/r.st"
run "eval regression" "$BNN" eval -m "$T/r.st"
num_holds 'r > 0 && r < 0.5' r="$(val rmse)" && ok || bad "regression rmse $(val rmse)"
run "two targets" "$BNN" train --data "npy:$T/x.npy,$T/yr2.npy" --task regression --epochs 5 -q -o "$T/r2.st"
run "info two targets" "$BNN" info "$T/r2.st"
grep -q "^likelihood gaussian (regression, 2 outputs)" "$T/out" && ok || bad "two regression outputs: $(grep -m1 likelihood "$T/out")"
# predict writes a mean and a variance per target, whose RMSE and Gaussian NLL are eval's.
run "eval two targets" "$BNN" eval -m "$T/r2.st"
rmse=$(val rmse) nll=$(val nll)
run "predict two targets" "$BNN" predict -m "$T/r2.st" --data "npy:$T/x.npy,$T/yr2.npy" -o "$T/p2.csv"
[ "$(head -1 "$T/p2.csv")" = "mean_0,var_0,mean_1,var_1" ] && ok || bad "two-target header: $(head -1 "$T/p2.csv")"
read -r prmse pnll < <(/usr/bin/python3 - "$T/p2.csv" "$T/yr2.npy" <<'PY'
import sys
import numpy as np
p = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
y = np.load(sys.argv[2]).astype(np.float64)
m, v = p[:, 0::2], p[:, 1::2]
print(np.sqrt(np.mean((m - y) ** 2)), np.mean(np.sum(0.5 * np.log(2 * np.pi * v) + (y - m) ** 2 / (2 * v), axis=1)))
PY
)
num_holds 'a - b < 6e-5 && b - a < 6e-5 && c - d < 6e-5 && d - c < 6e-5' a="$prmse" b="$rmse" c="$pnll" d="$nll" && ok ||
  bad "two-target predict: rmse $prmse nll $pnll, eval $rmse $nll"
run "train images" "$BNN" train --data "npy:$T/img.npy,$T/img_y.npy" --model mlp:64-32-2 --lr 1e-3 --epochs 5 -q -o "$T/img.st"
run "eval images" "$BNN" eval -m "$T/img.st"
num_holds 'a >= 0.95' a="$(val accuracy)" && ok || bad "image accuracy $(val accuracy)"
run "predict idx" "$BNN" predict -m "$T/img.st" --input "$T/img.idx" -o "$T/p_idx.csv"
# img.st saw the u8 values, IDX images come scaled by 1/255: a range 1/255 as wide.
grep -q "^note: .*img.idx's features range over \[0, 0.937255\], the data .*img.st was trained on over \[0, 239\]" "$T/err" &&
  ok || bad "no scaling note for images 0..1 against 0..239: $(cat "$T/err")"
run "predict the u8 images" "$BNN" predict -m "$T/img.st" --input "$T/img.npy" -o "$T/p_u8.csv"
grep -q "scaled" "$T/err" && bad "a scaling note for the training images themselves" || ok
run "predict scaled npy" "$BNN" predict -m "$T/img.st" --input "$T/img_scaled.npy" -o "$T/p_scaled.csv"
cmp -s "$T/p_idx.csv" "$T/p_scaled.csv" && ok || bad "IDX images and x / 255 in float32 predict differently"
# A pipe is not sniffed (its first bytes would be lost): IDX images through one still work.
run "predict idx from a pipe" "$BNN" predict -m "$T/img.st" --input <(cat "$T/img.idx") -o "$T/p_pipe.csv"
cmp -s "$T/p_idx.csv" "$T/p_pipe.csv" && ok || bad "IDX images from a pipe predict differently"
# CSV text through an unnamed pipe is read as IDX, and the message says why (it said only "bad
# magic number").
printf '0.1,0.2\n' >"$T/two.csv"
expect_fail "csv from a pipe" "is not a regular file, so its format goes by its name" "$BNN" predict -m "$T/img.st" --input <(cat "$T/two.csv") -o "$T/never.csv"
expect_fail "--task on built-in data" "--task is for CSV data (csv:FILE) and NumPy data (npy:X,Y); moons is not" \
  "$BNN" train --data moons --task regression -o "$T/z.st"

# ---------------------------------------------------------------- refused, in one line
# The arrays are inputs: no output may overwrite them.
cp "$T/y.npy" "$T/y_before.npy"
expect_fail "train -o over Y" "the output .*y.npy is the input" "$BNN" train --data "npy:$T/x.npy,$T/y.npy" -o "$T/y.npy"
expect_fail "eval --json over X" "the output .*x.npy is the input" "$BNN" eval -m "$T/m.st" --json "$T/x.npy"
expect_fail "predict -o over X" "the output .*x.npy is the input" "$BNN" predict -m "$T/m.st" --data "npy:$T/x.npy" -o "$T/x.npy"
cmp -s "$T/y.npy" "$T/y_before.npy" && ok || bad "a refused run changed y.npy"
expect_fail "npz" "xy.npz: a zip archive (np.savez writes NPZ files" "$BNN" train --data "npy:$T/xy.npz" -o "$T/z.st"
expect_fail "npz to predict" "xy.npz: a zip archive (np.savez writes NPZ files" "$BNN" predict -m "$T/m.st" --input "$T/xy.npz" -o "$T/z.csv"
expect_fail "object array" "obj.npy: dtype '|O' is not supported" "$BNN" train --data "npy:$T/obj.npy,$T/y.npy" -o "$T/z.st"
expect_fail "structured array" "rec.npy: a structured dtype" "$BNN" train --data "npy:$T/rec.npy,$T/y.npy" -o "$T/z.st"
expect_fail "complex" "c8.npy: dtype '<c8' is not supported" "$BNN" predict -m "$T/m.st" --input "$T/c8.npy" -o "$T/z.csv"
expect_fail "short labels" "y_short.npy: targets of shape (299,) do not fit .*x.npy of shape (300, 2)" \
  "$BNN" eval -m "$T/m.st" --data "npy:$T/x.npy,$T/y_short.npy"
expect_fail "half labels" "y_half.npy: the target of row 0 (counting from 0) is 0.5" \
  "$BNN" eval -m "$T/m.st" --data "npy:$T/x.npy,$T/y_half.npy"
expect_fail "nan" "x_nan.npy: the feature at row 5, column 1 (counting from 0) is nan" \
  "$BNN" predict -m "$T/m.st" --input "$T/x_nan.npy" -o "$T/z.csv"
for v in inf nan; do
  expect_fail "float16 $v" "x_f2_$v.npy: the feature at row 9, column 0 (counting from 0) is $v" \
    "$BNN" predict -m "$T/m.st" --input "$T/x_f2_$v.npy" -o "$T/z.csv"
done
expect_fail "truncated" "x_trunc.npy: truncated" "$BNN" predict -m "$T/m.st" --input "$T/x_trunc.npy" -o "$T/z.csv"
expect_fail "missing" "absent.npy: cannot open" "$BNN" train --data "npy:$T/absent.npy,$T/y.npy" -o "$T/z.st"
expect_usage "wrong width" "features .* but model mlp:2-50-50-2:tanh expects 2" \
  "$BNN" predict -m "$T/m.st" --input "$T/img.npy" -o "$T/z.csv"
[ ! -e "$T/z.st" ] && [ ! -e "$T/z.csv" ] && ok || bad "a refused run wrote its output"

# Native float32 features become the dataset's buffer: loading 64 MiB of them costs about 64 MiB
# more than loading 100 rows, not twice that (the array was read, then copied into a second
# buffer). Not under AddressSanitizer, whose shadow memory adds to every allocation.
if [ -z "${ASAN_OPTIONS:-}" ] && [ -z "${BNN_SANITIZED:-}" ]; then
  /usr/bin/python3 - "$T" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
np.save(f"{d}/wide_x.npy", rng.standard_normal((8192, 2048), dtype=np.float32))
np.save(f"{d}/wide_y.npy", np.arange(8192) % 2)
np.save(f"{d}/small_x.npy", rng.standard_normal((100, 2048), dtype=np.float32))
np.save(f"{d}/small_y.npy", np.arange(100) % 2)
PY
  run "train wide" "$BNN" train --data "npy:$T/small_x.npy,$T/small_y.npy" --model mlp:2048-2 --epochs 1 -q -o "$T/wide.st"
  peak() {
    /usr/bin/python3 -c "
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)" "$BNN" eval -m "$T/wide.st" --data "$1"
  }
  small=$(peak "npy:$T/small_x.npy,$T/small_y.npy")
  big=$(peak "npy:$T/wide_x.npy,$T/wide_y.npy")
  num_holds 's > 0 && b > 0 && b - s < 1.5 * 65536' s="$small" b="$big" && ok ||
    bad "peak memory of eval on 64 MiB of float32 features: $big KiB against $small KiB for 100 rows"
  # float64 (NumPy's default, 128 MiB here, gzipped too) is converted as it is read: about the
  # same 64 MiB of floats, not the file's bytes beside them (192 MiB before).
  /usr/bin/python3 - "$T" <<'PY'
import gzip, shutil, sys
import numpy as np
d = sys.argv[1]
x = np.load(f"{d}/wide_x.npy").astype(np.float64)
np.save(f"{d}/wide64_x.npy", x)
with open(f"{d}/wide64_x.npy", "rb") as src, gzip.open(f"{d}/wide64_x.npy.gz", "wb", compresslevel=1) as dst:
    shutil.copyfileobj(src, dst)
PY
  for f in wide64_x.npy wide64_x.npy.gz; do
    big=$(peak "npy:$T/$f,$T/wide_y.npy")
    num_holds 's > 0 && b > 0 && b - s < 1.5 * 65536' s="$small" b="$big" && ok ||
      bad "peak memory of eval on 128 MiB of float64 features ($f): $big KiB against $small KiB for 100 rows"
  done
  # A CSV is read a piece at a time: its peak is about its floats (8 MiB for 1024 rows), not the
  # 30 MB of text beside them (40 MB more before), and it evaluates as the NPY of its values.
  /usr/bin/python3 - "$T" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
x = np.load(f"{d}/wide_x.npy")[:1024]
np.save(f"{d}/wide1k_x.npy", x)
np.save(f"{d}/wide1k_y.npy", np.arange(1024) % 2)
np.savetxt(f"{d}/wide1k.csv", np.column_stack([x.astype(np.float64), np.arange(1024) % 2]), delimiter=",", fmt="%.9g")
np.savetxt(f"{d}/small.csv", np.column_stack([x[:100].astype(np.float64), np.arange(100) % 2]), delimiter=",", fmt="%.9g")
PY
  small=$(peak "csv:$T/small.csv")
  big=$(peak "csv:$T/wide1k.csv")
  num_holds 's > 0 && b > 0 && b - s < 1.5 * 8192' s="$small" b="$big" && ok ||
    bad "peak memory of eval on a 30 MB CSV of 8 MiB of floats: $big KiB against $small KiB for 100 rows"
  run "eval csv" "$BNN" eval -m "$T/wide.st" --data "csv:$T/wide1k.csv"
  nll_csv=$(val nll)
  run "eval npy of the csv's values" "$BNN" eval -m "$T/wide.st" --data "npy:$T/wide1k_x.npy,$T/wide1k_y.npy"
  [ -n "$nll_csv" ] && [ "$(val nll)" = "$nll_csv" ] && ok || bad "a CSV and the NPY of its values: nll $nll_csv and $(val nll)"
  run "eval float64" "$BNN" eval -m "$T/wide.st" --data "npy:$T/wide64_x.npy,$T/wide_y.npy"
  nll64=$(val nll)
  run "eval float32" "$BNN" eval -m "$T/wide.st" --data "npy:$T/wide_x.npy,$T/wide_y.npy"
  [ -n "$nll64" ] && [ "$(val nll)" = "$nll64" ] && ok || bad "float64 and float32 of the same values: nll $nll64 and $(val nll)"
  # A hold-out is cut from the loaded set in place: train --holdout, and laplace on a model with
  # one, cost about the 64 MiB of features (plus the held-out rows' copy for laplace), not the
  # training rows' copy beside them too (56 MiB more: they did before bnn_dataset_truncate).
  peak_of() {
    /usr/bin/python3 -c "
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)" "$@"
  }
  small=$(peak_of "$BNN" train --data "npy:$T/small_x.npy,$T/small_y.npy" --model mlp:2048-2 --epochs 1 --holdout 12 -q -o "$T/hold_s.st")
  big=$(peak_of "$BNN" train --data "npy:$T/wide_x.npy,$T/wide_y.npy" --model mlp:2048-2 --epochs 1 --holdout 1024 -q -o "$T/hold_b.st")
  num_holds 's > 0 && b > 0 && b - s < 1.5 * 65536' s="$small" b="$big" && ok ||
    bad "peak memory of train --holdout on 64 MiB of features: $big KiB against $small KiB for 100 rows"
  small=$(peak_of "$BNN" laplace -m "$T/hold_s.st" -o "$T/hold_ls.st")
  big=$(peak_of "$BNN" laplace -m "$T/hold_b.st" -o "$T/hold_lb.st")
  num_holds 's > 0 && b > 0 && b - s < 1.5 * 65536' s="$small" b="$big" && ok ||
    bad "peak memory of laplace with a hold-out on 64 MiB of features: $big KiB against $small KiB for 100 rows"
  # predict prints its CSV straight into the output file: for 200,000 inputs of a 10-class model
  # (a 27 MB CSV) its peak is the 17.6 MB of probabilities and scores it computes and little
  # more, not the text too (before: the whole CSV built in memory, 27 MB more).
  /usr/bin/python3 - "$T" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(5)
np.save(f"{d}/many_x.npy", rng.standard_normal((200000, 2)).astype(np.float32))
np.save(f"{d}/few_x.npy", rng.standard_normal((1000, 2)).astype(np.float32))
np.save(f"{d}/few_y.npy", rng.integers(0, 10, 1000))
PY
  run "train ten classes" "$BNN" train --data "npy:$T/few_x.npy,$T/few_y.npy" --model mlp:2-16-10 --epochs 1 -q -o "$T/ten.st"
  small=$(peak_of "$BNN" predict -m "$T/ten.st" --input "$T/few_x.npy" -o "$T/p_few.csv")
  big=$(peak_of "$BNN" predict -m "$T/ten.st" --input "$T/many_x.npy" -o "$T/p_many.csv")
  [ "$(wc -l <"$T/p_many.csv")" -eq 200001 ] && ok || bad "predict wrote $(wc -l <"$T/p_many.csv") lines for 200000 inputs"
  num_holds 's > 0 && b > 0 && b - s < 24 * 1024' s="$small" b="$big" && ok ||
    bad "peak memory of predict on 200000 inputs: $big KiB against $small KiB for 1000"
fi

cli_done
