# bench/lib.sh: the shell helpers the benchmark harnesses share
# (bench/run.sh, bench/h2/run.sh, bench/forward/run.sh source it).

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# busy_of CPU: user + nice + system + steal jiffies of a /proc/stat line
# ("cpu" for all cores); nonidle_of adds irq and softirq.
busy_of() { awk -v c="$1" '$1==c{print $2+$3+$4+$9}' /proc/stat; }
nonidle_of() { awk -v c="$1" '$1==c{print $2+$3+$4+$7+$8+$9}' /proc/stat; }

# tree PID: PID and all its descendants.
tree() {
	local p=$1 c
	echo "$p"
	for c in $(pgrep -P "$p" 2>/dev/null); do tree "$c"; done
}

# stop_pid PID: TERM, up to 5 s to exit, then KILL; forgets PID from
# the STARTED array the harness keeps for its exit trap.
stop_pid() {
	local p=$1 i q keep=()
	for q in "${STARTED[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
	STARTED=("${keep[@]}")
	kill -TERM "$p" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

# secs DURATION: "10s" → "10".
secs() { echo "${1%s}"; }

# weir_desc: the Weir being measured, as "commit abc1234", with a note
# when files outside bench/ differ from that commit.
weir_desc() {
	local d
	d="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	if [ -n "$(git status --porcelain -- . ':!bench' 2>/dev/null)" ]; then
		d+=" plus uncommitted changes"
	fi
	echo "$d"
}
