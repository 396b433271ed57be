#!/bin/sh
# Entry point of the docker compose `controller` service: prepare, then `exec mmctl "$@"` (mmctl becomes the
# container's main process and receives docker's SIGTERM itself, so `docker compose stop` drains).
#
# A lock file a previous container left behind (a crash, an OOM kill) needs nothing here: mmctl's lock is a
# kernel flock that died with that process, so the next start sees a crashed run and recovers (FR-1202).
#
# With SIM_STATE_DIR set (the simulator's state volume, read-only): wait for the simulator's keys.json,
#    export the id of its first key (the one the simulator prints) as SIM_API_KEY_ID and link its PEM file to
#    SIM_KEY_LINK, the fixed path the Exchange spec's private_key_file names. The key never leaves the volume.
#
# Settings (environment): SIM_STATE_DIR (unset: no simulator),
# SIM_KEY_LINK (default /tmp/mmctl/simulator.pem), SIM_KEY_WAIT_SECONDS (default 60).
set -eu

if [ -n "${SIM_STATE_DIR:-}" ]; then
    keys="$SIM_STATE_DIR/keys.json"
    wait_s="${SIM_KEY_WAIT_SECONDS:-60}"
    waited=0
    while [ ! -s "$keys" ]; do
        if [ "$waited" -ge "$wait_s" ]; then
            echo "entrypoint: no simulator key registry at $keys after ${wait_s} s (is the simulator running?)" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    key_id="$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["keys"][0]["key_id"])' "$keys")"
    key_file="$SIM_STATE_DIR/$key_id.pem"
    if [ ! -f "$key_file" ]; then
        echo "entrypoint: $keys names key $key_id but $key_file does not exist" >&2
        exit 1
    fi
    link="${SIM_KEY_LINK:-/tmp/mmctl/simulator.pem}"
    mkdir -p "$(dirname "$link")"
    ln -sfn "$key_file" "$link"
    SIM_API_KEY_ID="$key_id"
    export SIM_API_KEY_ID
    echo "entrypoint: simulator key $key_id ($link)" >&2
fi

exec mmctl "$@"
