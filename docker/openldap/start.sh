#!/bin/sh
# First start: build cn=config from directory-schema/, load the sample tree, apply
# the cn=config snippets. Later starts reuse the volume. Then slapd runs in the
# foreground on ldap://0.0.0.0:389 and a local ldapi socket.
set -eu
schema=/opt/directory-schema
data=/var/lib/guichet-ldap
socket="$data/run/ldapi"
ldapi="ldapi://$(printf %s "$socket" | sed 's|/|%2F|g')"
: "${LDAP_ADMIN_PASSWORD:?set LDAP_ADMIN_PASSWORD}"

start() {
  rm -f "$socket"
  slapd -d 0 -h "ldap://0.0.0.0:389/ $ldapi" -F "$data/config" &
  pid=$!
  i=0
  until ldapwhoami -Q -Y EXTERNAL -H "$ldapi" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 500 ] || { echo "slapd did not start" >&2; exit 1; }
    sleep 0.02
  done
}

if [ ! -f "$data/config/cn=config.ldif" ]; then
  mkdir -p "$data/config" "$data/db" "$data/run"
  sed -e "s|@DB_DIR@|$data/db|g" -e "s|@RUN_DIR@|$data/run|g" \
      -e "s|@MODULE_DIR@|/usr/lib/ldap|g" -e "s|@SYSTEM_SCHEMA_DIR@|/etc/ldap/schema|g" \
      -e "s|@SCHEMA_DIR@|$schema/schema|g" -e "s|@ADMIN_PASSWORD@|$LDAP_ADMIN_PASSWORD|g" \
      -e "s|@PEERCRED_UID@|$(id -u)|g" -e "s|@PEERCRED_GID@|$(id -g)|g" \
      "$schema/dev/slapd-init.ldif.in" > "$data/init.ldif"
  slapadd -n0 -F "$data/config" -l "$data/init.ldif"
  slapadd -q -b dc=univ-demo,dc=fr -F "$data/config" -l "$schema/sample/tree.ldif"
  start
  for snippet in "$schema"/config/*.ldif; do
    ldapmodify -Q -Y EXTERNAL -H "$ldapi" -f "$snippet"
  done
else
  start
fi
wait "$pid"
