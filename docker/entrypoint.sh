#!/bin/sh
# Secrets arrive as files (compose/Kubernetes secrets): for every VAR_FILE in the environment,
# export VAR with the file's content, then run the command. The PostgreSQL password reaches
# libpq as PGPASSWORD this way and never appears in a URL, a command line or the compose file.
set -eu
for var in $(env | sed -n 's/^\([A-Z_][A-Z0-9_]*\)_FILE=.*/\1/p'); do
    file=$(printenv "${var}_FILE")
    if [ ! -r "$file" ]; then
        echo "error: ${var}_FILE: cannot read $file" >&2
        exit 2
    fi
    value=$(cat "$file")
    export "$var=$value"
    unset "${var}_FILE"
done
exec "$@"
