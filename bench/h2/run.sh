#!/usr/bin/env bash
# bench/h2/run.sh: HTTP/2-over-TLS throughput and TLS handshake rate of
# Weir against nginx, HAProxy, h2o and Caddy, all terminating TLS 1.3 with
# one ECDSA P-256 certificate and proxying to one HTTP/1.1 origin
# (bench/origin) over keep-alive connections.
#
#   bash bench/h2/run.sh                                   # ~10 minutes
#   H2_DURATION=4s H2_RUNS=1 bash bench/h2/run.sh          # quick look
#
# Pinning as in bench/run.sh: each proxy gets ONE core and one worker
# (taskset -c $H2_PROXY_CPU; nginx worker_processes 1, HAProxy nbthread 1,
# h2o num-threads 1, Caddy and Weir GOMAXPROCS=1); the origin and the load
# generator share the other core. All traffic stays on 127.0.0.1; every
# load run is bounded in time (and wrapped in `timeout`).
#
# Scenarios:
#   h2small  h2load -c 32 -m 10 (320 streams), GET /small (12-byte body)
#   h2big    h2load -c 32 -m 10, GET /100k (102400-byte body)
#   hsfull   bench/h2/handshake: 32 workers, new TLS connection per request,
#            no session resumption (a certificate signature per handshake)
#   hsresume the same with a shared client session cache (TLS 1.3 PSK
#            resumption from the server's session ticket)
#
# Knobs (environment):
#   H2_DURATION   length of one measured run (default 6s)
#   H2_WARMUP     unmeasured run before each measured one (default 2s)
#   H2_RUNS       runs per proxy and scenario; the median is reported (3)
#   H2_PROXIES    subset/order of: weir nginx haproxy h2o caddy
#   H2_SCENARIOS  subset/order of: h2small h2big hsfull hsresume
#   H2_CONNS      connections / handshake workers (32)
#   H2_STREAMS    h2load -m, streams per connection (10)
#   H2_PROFILE    1: CPU-profile Weir under load (1), in H2_PROFILE_SCENARIOS
#                 (default: h2small h2big hsfull)
#   H2_QUIET_PCT  before each run, wait until the machine uses less than
#                 this % of one core (default 25; 0: off)
#   H2_QUIET_MAX  longest wait for quiet, seconds (default 10)
#   H2_NICE       niceness of proxy, origin and load (default -20 as root)
#   H2_PORT_BASE  first port used (default 19080; origin at +920)
#   H2_OUT        results directory (default bench/results/h2)
#   H2_PROXY_CPU / H2_LOAD_CPU  cores for the proxy / origin+load (0 / 1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. bench/lib.sh

H2_DURATION=${H2_DURATION:-6s}
H2_WARMUP=${H2_WARMUP:-2s}
H2_RUNS=${H2_RUNS:-3}
H2_PROXIES=${H2_PROXIES:-"weir nginx haproxy h2o caddy"}
H2_SCENARIOS=${H2_SCENARIOS:-"h2small h2big hsfull hsresume"}
H2_CONNS=${H2_CONNS:-32}
H2_STREAMS=${H2_STREAMS:-10}
H2_PROFILE=${H2_PROFILE:-1}
H2_QUIET_PCT=${H2_QUIET_PCT:-25}
H2_QUIET_MAX=${H2_QUIET_MAX:-10}
if [ "$(id -u)" = 0 ]; then H2_NICE=${H2_NICE:--20}; else H2_NICE=${H2_NICE:-0}; fi
if [ "$H2_NICE" != 0 ] && [ -w /proc/self/autogroup ]; then
	echo "$H2_NICE" >/proc/self/autogroup 2>/dev/null || true
fi
H2_PORT_BASE=${H2_PORT_BASE:-19080}
H2_OUT=${H2_OUT:-bench/results/h2}
PCPU=${H2_PROXY_CPU:-0}
LCPU=${H2_LOAD_CPU:-1}
DUR=${H2_DURATION%s}
WARM=${H2_WARMUP%s}

# ---------------------------------------------------------------- install
missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v h2o >/dev/null || missing+=(h2o)
command -v caddy >/dev/null || missing+=(caddy)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/weir-h2bench.XXXXXX)
BIN=$WORK/bin
mkdir -p "$BIN" "$WORK/logs" "$WORK/nginx" "$WORK/caddy" "$H2_OUT/out"
STARTED=() # PIDs this script started; only these are ever signalled
cleanup() {
	local p
	for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	if [ -z "${H2_KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the origin, Weir's TLS launcher, the handshake client and the report"
go build -o "$BIN/" ./bench/origin ./bench/h2/weirtls ./bench/h2/handshake ./bench/h2/report

# ---------------------------------------------------------------- certificate
# One self-signed ECDSA P-256 certificate for every proxy.
CERT=$WORK/cert.pem KEY=$WORK/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
	-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$KEY" -out "$CERT" 2>/dev/null
openssl pkey -in "$KEY" -out "$WORK/key8.pem" # PKCS#8, read by all
KEY=$WORK/key8.pem
cat "$CERT" "$KEY" >"$WORK/combined.pem" # HAProxy wants both in one file

ORIGIN_PORT=$((H2_PORT_BASE + 920))
ORIGIN=127.0.0.1:$ORIGIN_PORT
declare -A PORT=([weir]=$H2_PORT_BASE [nginx]=$((H2_PORT_BASE + 1)) [haproxy]=$((H2_PORT_BASE + 2))
	[h2o]=$((H2_PORT_BASE + 3)) [caddy]=$((H2_PORT_BASE + 4)) [weirprof]=$((H2_PORT_BASE + 5)))
for p in "$ORIGIN_PORT" "${PORT[@]}"; do
	port_busy "$p" && die "port $p is in use; set H2_PORT_BASE"
done

# ---------------------------------------------------------------- configs
# Same settings everywhere as far as each allows: TLS 1.3 only, ALPN h2
# then http/1.1, session tickets as each server does by default, no access
# log, keep-alive connections to the origin, no limit on requests per
# client connection (nginx's default 1000 would add reconnects).
c=$WORK/conf
mkdir -p "$c"
cat >"$c/nginx.conf" <<-EOF
	worker_processes 1;
	worker_rlimit_nofile 19500;
	error_log $WORK/logs/nginx-error.log warn;
	pid $WORK/nginx/nginx.pid;
	events { worker_connections 19000; multi_accept on; }
	http {
	    access_log off;
	    client_body_temp_path $WORK/nginx/body;
	    proxy_temp_path $WORK/nginx/proxy;
	    fastcgi_temp_path $WORK/nginx/fastcgi;
	    uwsgi_temp_path $WORK/nginx/uwsgi;
	    scgi_temp_path $WORK/nginx/scgi;
	    keepalive_timeout 60s;
	    keepalive_requests 1000000;
	    upstream origin { server $ORIGIN; keepalive 128; keepalive_requests 1000000; }
	    server {
	        listen 127.0.0.1:${PORT[nginx]} ssl http2 reuseport backlog=4096;
	        ssl_certificate $CERT;
	        ssl_certificate_key $KEY;
	        ssl_protocols TLSv1.3;
	        location / {
	            proxy_pass http://origin;
	            proxy_http_version 1.1;
	            proxy_set_header Connection "";
	            proxy_set_header Host \$http_host;
	            proxy_set_header X-Forwarded-For \$remote_addr;
	            proxy_set_header X-Forwarded-Proto \$scheme;
	            proxy_buffering off;
	            proxy_request_buffering off;
	            proxy_buffer_size 16k;
	            proxy_buffers 8 16k;
	            proxy_busy_buffers_size 32k;
	            client_max_body_size 0;
	        }
	    }
	}
EOF
cat >"$c/haproxy.cfg" <<-EOF
	global
	    nbthread 1
	    maxconn 10100
	    no strict-limits
	defaults
	    mode http
	    timeout connect 5s
	    timeout client 60s
	    timeout server 60s
	    timeout http-request 10s
	    timeout http-keep-alive 60s
	    option http-keep-alive
	    option forwardfor
	    http-reuse always
	frontend fe
	    bind 127.0.0.1:${PORT[haproxy]} ssl crt $WORK/combined.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3
	    maxconn 10100
	    default_backend origin
	backend origin
	    server o1 $ORIGIN
EOF
cat >"$c/h2o.conf" <<-EOF
	num-threads: 1
	max-connections: 19000
	http1-request-timeout: 60
	hosts:
	  default:
	    listen:
	      host: 127.0.0.1
	      port: ${PORT[h2o]}
	      ssl:
	        certificate-file: $CERT
	        key-file: $KEY
	        minimum-version: TLSv1.3
	    paths:
	      /:
	        proxy.reverse.url: http://$ORIGIN/
	        proxy.preserve-host: ON
	        proxy.timeout.keepalive: 60000
EOF
cat >"$c/Caddyfile" <<-EOF
	{
	    admin off
	    auto_https off
	    servers {
	        protocols h1 h2
	        timeouts {
	            idle 60s
	        }
	    }
	}
	https://127.0.0.1:${PORT[caddy]} {
	    tls $CERT $KEY {
	        protocols tls1.3
	    }
	    reverse_proxy $ORIGIN {
	        transport http {
	            keepalive 60s
	            keepalive_idle_conns 128
	            keepalive_idle_conns_per_host 128
	        }
	    }
	}
EOF

# ---------------------------------------------------------------- /proc helpers
HZ=$(getconf CLK_TCK)
cpu_of() { # CPU jiffies (user+system) used so far by a process tree
	local t=0 p v
	for p in $(tree "$1"); do
		v=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12+$13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
wait_quiet() { # prints seconds waited
	local waited=0 a b pct
	((H2_QUIET_PCT > 0)) || { echo 0; return; }
	while :; do
		a=$(busy_of cpu)
		sleep 1
		b=$(busy_of cpu)
		pct=$(((b - a) * 100 / HZ))
		if ((pct < H2_QUIET_PCT)) || ((waited >= H2_QUIET_MAX)); then
			((pct >= H2_QUIET_PCT)) && log "  machine still ${pct}% busy after ${waited}s; running anyway"
			echo "$waited"
			return
		fi
		waited=$((waited + 1))
	done
}

# ---------------------------------------------------------------- processes
start_bg() { "$@" >"$WORK/logs/$LOGTAG.log" 2>&1 & LAST_PID=$!; STARTED+=("$LAST_PID"); }
wait_ready() { # port pid
	local i
	for i in $(seq 1 100); do
		kill -0 "$2" 2>/dev/null || return 1
		if [ "$(curl -sk --http2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$1/small")" = 200 ]; then return 0; fi
		sleep 0.1
	done
	return 1
}
start_proxy() { # NAME [extra weirtls args]; sets PROXY_PID
	local name=$1 port=${PORT[$1]} pin=(nice -n "$H2_NICE" taskset -c "$PCPU")
	shift
	LOGTAG=$name
	case $name in
	weir | weirprof) start_bg env GOMAXPROCS=1 "${pin[@]}" "$BIN/weirtls" -listen "127.0.0.1:$port" -origin "$ORIGIN" -cert "$CERT" -key "$KEY" "$@" ;;
	nginx) start_bg "${pin[@]}" nginx -p "$WORK/nginx" -c "$c/nginx.conf" -g 'daemon off;' ;;
	haproxy) start_bg "${pin[@]}" haproxy -db -f "$c/haproxy.cfg" ;;
	h2o) start_bg "${pin[@]}" h2o -c "$c/h2o.conf" ;;
	caddy) start_bg env GOMAXPROCS=1 XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" HOME="$WORK/caddy" \
		"${pin[@]}" caddy run --adapter caddyfile --config "$c/Caddyfile" ;;
	*) die "unknown proxy $name" ;;
	esac
	PROXY_PID=$LAST_PID
	if ! wait_ready "$port" "$PROXY_PID"; then
		tail -20 "$WORK/logs/$name.log" >&2 || true
		die "$name did not come up on port $port"
	fi
}

# load PORT SCENARIO SECONDS WARMUP -> output of the load generator
load() {
	local port=$1 sc=$2 d=$3 w=$4
	local run=(timeout $((d + w + 30)) nice -n "$H2_NICE" taskset -c "$LCPU")
	case $sc in
	h2small | h2big)
		local path=/small wu=()
		[ "$sc" = h2big ] && path=/100k
		((w > 0)) && wu=(--warm-up-time "${w}s")
		"${run[@]}" h2load -t 1 -c "$H2_CONNS" -m "$H2_STREAMS" -D "$d" "${wu[@]}" "https://127.0.0.1:$port$path" 2>&1 || true
		;;
	hsfull) "${run[@]}" env GOMAXPROCS=1 "$BIN/handshake" -addr "127.0.0.1:$port" -c "$H2_CONNS" -d "${d}s" -warmup "${w}s" 2>&1 || true ;;
	hsresume) "${run[@]}" env GOMAXPROCS=1 "$BIN/handshake" -addr "127.0.0.1:$port" -c "$H2_CONNS" -d "${d}s" -warmup "${w}s" -resume 2>&1 || true ;;
	*) die "unknown scenario $sc" ;;
	esac
}

RAW=$H2_OUT/raw.csv
echo "proxy,scenario,run,duration_s,count,rate,failed,proxy_cpu_s,proxy_core_pct,load_core_pct,rate_per_cpu_s,quiet_wait_s,other_cpu_s,elapsed_s,alpn,tls" >"$RAW"

measure() { # NAME SCENARIO RUN
	local name=$1 sc=$2 run=$3 port=${PORT[$1]} waited
	waited=$(wait_quiet)
	start_proxy "$name"
	# what was negotiated, for the record
	local neg alpn tlsv
	neg=$(timeout 10 h2load -n 1 -c 1 "https://127.0.0.1:$port/small" 2>&1 || true)
	alpn=$(awk -F': ' '/^Application protocol/{print $2}' <<<"$neg")
	tlsv=$(awk -F': ' '/^TLS Protocol/{p=$2} /^Server Temp Key/{k=$2} END{gsub(" ","_",k); print p"/"k}' <<<"$neg")
	local c0 c1 p0 p1 l0 l1 t0 t1 s0 s1 out el
	c0=$(cpu_of "$PROXY_PID"); p0=$(nonidle_of "cpu$PCPU"); l0=$(nonidle_of "cpu$LCPU"); t0=$(busy_of cpu)
	s0=$(date +%s%N)
	out=$(load "$port" "$sc" "$DUR" "$WARM")
	s1=$(date +%s%N)
	c1=$(cpu_of "$PROXY_PID"); p1=$(nonidle_of "cpu$PCPU"); l1=$(nonidle_of "cpu$LCPU"); t1=$(busy_of cpu)
	if ! kill -0 "$PROXY_PID" 2>/dev/null; then
		log "  $name EXITED during the run"
		cp "$WORK/logs/$name.log" "$H2_OUT/out/$name-$sc-$run-exited.log" || true
	fi
	stop_pid "$PROXY_PID"
	echo "$out" >"$H2_OUT/out/$name-$sc-$run.txt"
	el=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
	local count=0 rate=0 failed=0 secs=$DUR line
	case $sc in
	h2*)
		count=$(awk '/^requests:/{print $8}' <<<"$out")             # succeeded
		failed=$(awk '/^requests:/{print $10+$12+$14}' <<<"$out")  # failed+errored+timeout
		rate=$(awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out")
		;;
	hs*)
		line=$(awk '/^RESULT/{sub("RESULT ",""); print}' <<<"$out")
		count=$(tr ' ' '\n' <<<"$line" | awk -F= '$1=="ok"{print $2}')
		failed=$(tr ' ' '\n' <<<"$line" | awk -F= '$1=="errors"{print $2}')
		rate=$(tr ' ' '\n' <<<"$line" | awk -F= '$1=="rate"{print $2}')
		secs=$(tr ' ' '\n' <<<"$line" | awk -F= '$1=="secs"{print $2}')
		;;
	esac
	local cpu ppct lpct other perc
	cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
	ppct=$(awk -v a="$p0" -v b="$p1" -v hz="$HZ" -v d="$el" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
	lpct=$(awk -v a="$l0" -v b="$l1" -v hz="$HZ" -v d="$el" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
	other=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v p="$cpu" 'BEGIN{x=(b-a)/hz-p; if (x<0) x=0; printf "%.2f", x}')
	# Work per CPU-second of the proxy's own processes: the rate times the
	# elapsed time (warm-up included) over the proxy's CPU time in it. It
	# shows the proxy's cost even when the load generator or other work on
	# the machine, not the proxy, was the bottleneck.
	perc=$(awk -v r="${rate:-0}" -v e="$el" -v c="$cpu" 'BEGIN{if (c>0) printf "%.0f", r*e/c; else print 0}')
	echo "$name,$sc,$run,${secs:-$DUR},${count:-0},${rate:-0},${failed:-0},$cpu,$ppct,$lpct,$perc,$waited,$other,$el,${alpn:-?},${tlsv:-?}" >>"$RAW"
	log "$(printf '%-8s %-9s run %d: %10s /s  failed %s  proxy core %3s%%  load core %3s%%  per proxy cpu-s %8s  (%s %s)' \
		"$name" "$sc" "$run" "${rate:-0}" "${failed:-0}" "$ppct" "$lpct" "$perc" "${alpn:-?}" "${tlsv:-?}")"
}

# ---------------------------------------------------------------- origin
LOGTAG=origin
start_bg env GOMAXPROCS=1 nice -n "$H2_NICE" taskset -c "$LCPU" "$BIN/origin" -addr "$ORIGIN"
ORIGIN_PID=$LAST_PID
for i in $(seq 1 50); do port_busy "$ORIGIN_PORT" && break; sleep 0.1; done
[ "$(curl -s "http://$ORIGIN/small")" = "hello world" ] || die "origin is not answering"

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc: $(nproc)"
	lscpu | grep -E '^(Model name|Hypervisor)' || true
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "weir: $(weir_desc)"
	echo "nginx: $(nginx -v 2>&1)"
	echo "haproxy: $(haproxy -v 2>&1 | head -1)"
	echo "h2o: $(h2o --version 2>&1 | head -1)"
	echo "caddy: $(caddy version 2>&1 | head -1)"
	echo "h2load: $(h2load --version 2>&1 | head -1)"
	echo "openssl: $(openssl version)"
	echo "runs: ${H2_RUNS} x ${DUR}s (median), warm-up ${WARM}s, ${H2_CONNS} connections/workers, ${H2_STREAMS} streams each; niceness $H2_NICE; quiet below ${H2_QUIET_PCT}% of a core (max ${H2_QUIET_MAX}s)"
	echo "loadavg at start: $(cat /proc/loadavg)"
} >"$H2_OUT/env.txt"

# ---------------------------------------------------------------- runs
# Runs are interleaved (run 1 of every proxy, then run 2, ...) so that a
# burst of outside load hits one run of several proxies rather than every
# run of one.
log "proxy on cpu$PCPU, origin + load on cpu$LCPU; ${H2_RUNS}x ${DUR}s per proxy and scenario"
for run in $(seq 1 "$H2_RUNS"); do
	for sc in $H2_SCENARIOS; do
		for name in $H2_PROXIES; do
			measure "$name" "$sc" "$run"
		done
	done
done

# ---------------------------------------------------------------- profile
if [ "$H2_PROFILE" = 1 ]; then
	for sc in ${H2_PROFILE_SCENARIOS:-h2small h2big hsfull}; do
		log "profiling Weir under $sc for ${DUR}s"
		wait_quiet >/dev/null
		start_proxy weirprof -cpuprofile "$H2_OUT/weir-$sc.pprof" -profile-delay "$((WARM + 1))s" -profile-seconds "$DUR"
		load "${PORT[weirprof]}" "$sc" "$((DUR + 1))" "$WARM" >"$H2_OUT/out/profile-$sc.txt"
		for i in $(seq 1 50); do grep -q wrote "$WORK/logs/weirprof.log" && break; sleep 0.2; done
		stop_pid "$PROXY_PID"
		{
			echo "== $sc: top 20 by flat"
			go tool pprof -top -nodecount=20 "$BIN/weirtls" "$H2_OUT/weir-$sc.pprof" 2>/dev/null
			echo
			echo "== $sc: top 30 by cum"
			go tool pprof -top -cum -nodecount=30 "$BIN/weirtls" "$H2_OUT/weir-$sc.pprof" 2>/dev/null
		} >"$H2_OUT/profile-$sc.txt" || true
	done
fi

# ---------------------------------------------------------------- report
"$BIN/report" -raw "$RAW" -env "$H2_OUT/env.txt" -out "$H2_OUT" >&2
log "done: $H2_OUT/latest.md, $H2_OUT/summary.csv"
