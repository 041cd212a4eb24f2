# Shared by run_gpu.sh, run_gpu_protocol.sh and run_gpu_launch.sh (sourced, after they set
# $out): the card's name, memory and driver into $out/gpu.txt, and step(), which runs one
# measurement under its own time limit, logs it to $out/NAME.log and prints its tail.
step() {  # step NAME SECONDS COMMAND...
  local name=$1 lim=$2; shift 2
  local t0=$SECONDS
  timeout "$lim" "$@" > "$out/$name.log" 2>&1
  echo "== $name: rc=$? in $((SECONDS - t0)) s"; grep -v -i "warn" "$out/$name.log" | tail -n 22
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
