#!/usr/bin/env bash
# Installs what Weir's tests need, only where it is missing. Safe to run
# again. Debian packages need root (or sudo); Go tools go to $(go env GOPATH)/bin.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2
H2SPEC_VERSION=v2.2.1+incompatible

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v h2load >/dev/null 2>&1 || need_apt+=(nghttp2-client)

if ((${#need_apt[@]})); then
	echo "deps: installing ${need_apt[*]}"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	echo "deps: installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

if ! [ -x "$gobin/h2spec" ]; then
	echo "deps: installing h2spec $H2SPEC_VERSION"
	go install "github.com/summerwind/h2spec/cmd/h2spec@$H2SPEC_VERSION"
fi
