#!/usr/bin/env bash
# End-to-end proof that directory-schema/ works on this machine's slapd (2.5+).
#
#   ./check.sh            both modes below
#   ./check.sh slapadd    schema loaded by slapadd (include: in dev/slapd-init.ldif.in),
#                         sample tree loaded offline with slapadd -n1
#   ./check.sh runtime    schema added to a RUNNING slapd with ldapadd -Y EXTERNAL (as an
#                         admin does on an existing directory), sample tree added online
#
# In each mode: a private slapd in a temporary directory (ldapi socket + 127.0.0.1 on a
# free port), config/*.ldif applied with ldapmodify -Y EXTERNAL in order, then the
# checks. Prints `ok - ...` / `not ok - ...`; exits 1 if any check fails. Kills its
# slapd and removes the temporary directory on exit. Runs as root or as any user
# (needs: slapd, ldap-utils; nothing is written outside the temporary directory).
set -uo pipefail
export LDAPNOINIT=1 # ignore ldap.conf / ~/.ldaprc: their BASE or TLS settings must not leak in

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
SLAPPASSWD=${SLAPPASSWD:-/usr/sbin/slappasswd}
MODULE_DIR=${MODULE_DIR:-/usr/lib/ldap}
SYSTEM_SCHEMA_DIR=${SYSTEM_SCHEMA_DIR:-/etc/ldap/schema}

SUFFIX='dc=univ-demo,dc=fr'
PEOPLE="ou=people,$SUFFIX"
ADMIN_DN="cn=admin,$SUFFIX"
SERVICE_DN="cn=guichet,ou=services,$SUFFIX"
SERVICE_PW='guichet-dev-secret'
IMPORT_DN="cn=guichet-import,ou=services,$SUFFIX"
IMPORT_PW='guichet-import-secret'
DEMO_PW='Demo-Passw0rd!'
ADMIN_PW="check-admin-$RANDOM$RANDOM$RANDOM"

for tool in "$SLAPD" "$SLAPADD" "$SLAPPASSWD"; do
  [ -x "$tool" ] || { echo "missing $tool (apt-get install slapd)" >&2; exit 2; }
done
for tool in ldapadd ldapmodify ldapsearch ldapwhoami ldappasswd; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install ldap-utils)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/guichet-ldap-check.XXXXXX") || exit 2
slapd_pid=
stop_slapd() {
  if [ -n "$slapd_pid" ]; then
    kill "$slapd_pid" 2>/dev/null
    wait "$slapd_pid" 2>/dev/null
    slapd_pid=
  fi
}
cleanup() { stop_slapd; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=0
count=0
mode=
ok() { count=$((count + 1)); echo "ok $count - [$mode] $*"; }
not_ok() { count=$((count + 1)); failures=$((failures + 1)); echo "not ok $count - [$mode] $*"; }
# check "description" command...   (passes when the command exits 0)
check() {
  local what=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what"; printf '#   %s\n' "$out" | head -5; fi
}
# check_rc "description" expected-exit-code command...
check_rc() {
  local what=$1 want=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$what"; else not_ok "$what (exit $rc, wanted $want)"; printf '#   %s\n' "$out" | head -5; fi
}

urlencode() {
  local s=$1 out= c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in [a-zA-Z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- building and starting a private slapd -------------------------------------------
# setup_dir <dir> <with_schema_includes: yes|no>
setup_dir() {
  local dir=$1 includes=$2
  mkdir -p "$dir/config" "$dir/db" "$dir/run"
  local template="$here/dev/slapd-init.ldif.in"
  {
    if [ "$includes" = yes ]; then cat "$template"; else grep -v '@SCHEMA_DIR@' "$template"; fi
  } | sed -e "s|@DB_DIR@|$dir/db|g" -e "s|@RUN_DIR@|$dir/run|g" \
      -e "s|@MODULE_DIR@|$MODULE_DIR|g" -e "s|@SYSTEM_SCHEMA_DIR@|$SYSTEM_SCHEMA_DIR|g" \
      -e "s|@SCHEMA_DIR@|$here/schema|g" -e "s|@ADMIN_PASSWORD@|$ADMIN_PW|g" \
      -e "s|@PEERCRED_UID@|$(id -u)|g" -e "s|@PEERCRED_GID@|$(id -g)|g" >"$dir/init.ldif"
  if grep -q '@[A-Z_]*@' "$dir/init.ldif"; then
    echo "unreplaced placeholder in dev/slapd-init.ldif.in:" >&2
    grep -n '@[A-Z_]*@' "$dir/init.ldif" >&2
    return 1
  fi
  "$SLAPADD" -n0 -F "$dir/config" -l "$dir/init.ldif" >"$dir/slapadd-config.log" 2>&1 || {
    echo "slapadd -n0 failed:" >&2; cat "$dir/slapadd-config.log" >&2; return 1; }
}

start_slapd() {
  local dir=$1 attempt i
  LDAPI="ldapi://$(urlencode "$dir/run/ldapi")"
  for attempt in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 40000))
    port_is_free "$PORT" || continue
    LDAP="ldap://127.0.0.1:$PORT/"
    rm -f "$dir/run/ldapi"
    "$SLAPD" -d 0 -h "$LDAPI $LDAP" -F "$dir/config" </dev/null >"$dir/slapd.log" 2>&1 &
    slapd_pid=$!
    for ((i = 0; i < 1000; i++)); do # 10 s
      if ldapwhoami -Q -Y EXTERNAL -H "$LDAPI" >/dev/null 2>&1; then
        # the TCP listener opens with the socket; make sure it is ours
        ldapwhoami -x -H "$LDAP" >/dev/null 2>&1 && return 0
      fi
      kill -0 "$slapd_pid" 2>/dev/null || break
      sleep 0.01
    done
    stop_slapd
  done
  echo "slapd did not start:" >&2
  cat "$dir/slapd.log" >&2
  return 1
}

apply_config_snippets() {
  local snippet out
  for snippet in "$here"/config/*.ldif; do
    if out=$(ldapmodify -Q -Y EXTERNAL -H "$LDAPI" -f "$snippet" 2>&1); then
      ok "ldapmodify -Y EXTERNAL config/$(basename "$snippet")"
    else
      not_ok "ldapmodify -Y EXTERNAL config/$(basename "$snippet")"; printf '#   %s\n' "$out"
    fi
  done
}

# --- small LDAP helpers ----------------------------------------------------------------
person() { printf 'uid=%s,%s' "$1" "$PEOPLE"; }
# modify_as <dn> <password> <ldif>     (exit code of ldapmodify)
modify_as() { printf '%s\n' "$3" | ldapmodify -x -H "$LDAP" -D "$1" -w "$2"; }
# read_as <bind dn|-> <password> <entry dn> <attribute>   (LDIF of the entry; `-` = admin)
# values: the same arguments, prints the attribute's values one a line
read_as() {
  local dn=$1 pw=$2
  [ "$dn" = - ] && { dn=$ADMIN_DN; pw=$ADMIN_PW; }
  ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP" -D "$dn" -w "$pw" -b "$3" -s base '(objectClass=*)' "$4" | decode_ldif
}
# ldapsearch prints some values (userPassword, non-ASCII names) as `attr:: base64`.
# NULs are dropped: slapd's argon2 module stores the hashes it makes (Password Modify)
# with the C string terminator(s) counted by argon2_encodedlen(); they still verify.
decode_ldif() {
  local line
  while IFS= read -r line; do
    if [[ $line =~ ^([^:]+)::\ (.*)$ ]]; then
      printf '%s: %s\n' "${BASH_REMATCH[1]}" "$(printf '%s' "${BASH_REMATCH[2]}" | base64 -d | tr -d '\000')"
    else
      printf '%s\n' "$line"
    fi
  done
}
values() { read_as "$@" | sed -n "s/^$4: //Ip"; }
bind_ok() { ldapwhoami -x -H "$LDAP" -D "$1" -w "$2" >/dev/null; }

# --- the checks --------------------------------------------------------------------------
run_checks() {
  local u dn out hash mod

  # Binds and passwords of the sample tree
  for u in cbernard e2301999 28700001; do
    check "activated $u binds with the demo password" bind_ok "$(person "$u")" "$DEMO_PW"
  done
  check_rc "a wrong password gives invalidCredentials (49)" 49 \
    ldapwhoami -x -H "$LDAP" -D "$(person cbernard)" -w 'wrong-password'
  check_rc "an account not yet activated (no userPassword) cannot bind (49)" 49 \
    ldapwhoami -x -H "$LDAP" -D "$(person ldurand)" -w "$DEMO_PW"
  check "the service DN binds" bind_ok "$SERVICE_DN" "$SERVICE_PW"
  check "the sample hashes are {ARGON2}" \
    bash -c '[ "$(grep -c "^userPassword: {ARGON2}\$argon2" "$1")" -ge 5 ] && ! grep -q "^userPassword: [^{]" "$1"' _ "$here/sample/tree.ldif"

  # What the service may write
  dn=$(person ldurand)
  check_rc "service replaces supannMailPerso" 0 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $dn
changetype: modify
replace: supannMailPerso
supannMailPerso: lea.new@example.org"
  check "the new supannMailPerso is stored" \
    bash -c '[ "$1" = lea.new@example.org ]' _ "$(values - - "$dn" supannMailPerso)"
  check_rc "service adds objectClass guichetAccount" 0 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $dn
changetype: modify
add: objectClass
objectClass: guichetAccount"
  check_rc "service writes the account state and Guichet's attributes" 0 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $dn
changetype: modify
replace: supannRessourceEtat
supannRessourceEtat: {COMPTE}A:SupannActif
-
replace: supannRessourceEtatDate
supannRessourceEtatDate: {COMPTE}A:SupannActif:20250915:
-
replace: guichetTermsVersion
guichetTermsVersion: 2025-09
-
replace: guichetTermsAcceptedAt
guichetTermsAcceptedAt: 20250915081500Z
-
replace: guichetActivatedAt
guichetActivatedAt: 20250915082000Z"
  check "generalizedTimeOrderingMatch works on guichetActivatedAt" bash -c \
    '[ "$(ldapsearch -x -LLL -H "$1" -D "$2" -w "$3" -b "$4" "(guichetActivatedAt>=20250915000000Z)" 1.1 | grep -c "^dn:")" -ge 1 ]' \
    _ "$LDAP" "$SERVICE_DN" "$SERVICE_PW" "$PEOPLE"

  # What the service may not write
  check_rc "service cannot write mail (50)" 50 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $dn
changetype: modify
replace: mail
mail: pirate@univ-demo.fr"
  check_rc "service cannot write sn (50)" 50 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $dn
changetype: modify
replace: sn
sn: Autre"
  check_rc "service cannot add objectClass posixAccount (50)" 50 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $dn
changetype: modify
add: objectClass
objectClass: posixAccount
-
add: uidNumber
uidNumber: 10001
-
add: gidNumber
gidNumber: 10001
-
add: homeDirectory
homeDirectory: /home/ldurand"
  check_rc "service cannot remove another object class (50)" 50 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $(person tmartin)
changetype: modify
delete: objectClass
objectClass: eduPerson"
  check_rc "service cannot create entries under ou=people (50)" 50 \
    bash -c 'printf "%s\n" "dn: uid=nouveau,$1" "objectClass: inetOrgPerson" "uid: nouveau" "cn: N" "sn: N" |
      ldapadd -x -H "$2" -D "$3" -w "$4"' _ "$PEOPLE" "$LDAP" "$SERVICE_DN" "$SERVICE_PW"
  check_rc "service cannot delete entries (50)" 50 \
    ldapdelete -x -H "$LDAP" -D "$SERVICE_DN" -w "$SERVICE_PW" "$(person jumeau2)"

  # What the service may read
  out=$(read_as "$SERVICE_DN" "$SERVICE_PW" "$(person cbernard)" '*')
  check "service reads people entries (mail, supannEtuId, state)" bash -c \
    'grep -qi "^mail:" <<<"$1" && grep -qi "^supannEtuId:" <<<"$1" && grep -qi "^supannRessourceEtatDate:" <<<"$1"' _ "$out"
  check "service cannot read userPassword" bash -c '! grep -qi "^userPassword" <<<"$1"' _ "$out"
  check "... but the hash is there (admin sees it)" bash -c 'grep -q "^userPassword: {ARGON2}" <<<"$1"' _ \
    "$(read_as - - "$(person cbernard)" userPassword)"
  check "service cannot read its own or another service's password" bash -c '! grep -qi "^userPassword" <<<"$1"' _ \
    "$(read_as "$SERVICE_DN" "$SERVICE_PW" "$SERVICE_DN" '*')"

  # A hash written by the service verifies at once
  hash=$("$SLAPPASSWD" -o module-path="$MODULE_DIR" -o module-load=argon2.so -h '{ARGON2}' -s 'Nouveau-Mot2passe!')
  check_rc "service writes an {ARGON2} userPassword (slappasswd hash)" 0 modify_as "$SERVICE_DN" "$SERVICE_PW" \
"dn: $(person tmartin)
changetype: modify
replace: userPassword
userPassword: $hash"
  check "the new password binds at once" bind_ok "$(person tmartin)" 'Nouveau-Mot2passe!'
  check_rc "... and a wrong one still gives 49" 49 \
    ldapwhoami -x -H "$LDAP" -D "$(person tmartin)" -w 'Nouveau-Mot2passe?'

  # RFC 3062 Password Modify: the directory hashes with argon2 (config/01-argon2.ldif)
  check "service sets a password with Password Modify (RFC 3062)" \
    ldappasswd -x -H "$LDAP" -D "$SERVICE_DN" -w "$SERVICE_PW" -s 'Par-Le-Serveur9' "$(person e2401235)"
  check "... stored as {ARGON2} by slapd" bash -c 'grep -q "^userPassword: {ARGON2}\$argon2" <<<"$1"' _ \
    "$(read_as - - "$(person e2401235)" userPassword)"
  check "... and it binds" bind_ok "$(person e2401235)" 'Par-Le-Serveur9'
  check "a student changes their own password, giving the old one (self =xw)" \
    ldappasswd -x -H "$LDAP" -D "$(person e2301999)" -w "$DEMO_PW" -a "$DEMO_PW" -s 'Mon-Nouveau-1' "$(person e2301999)"
  check "... and binds with it" bind_ok "$(person e2301999)" 'Mon-Nouveau-1'

  # The import account (`guichet import`): creates students, never touches passwords
  check "the import account binds" bind_ok "$IMPORT_DN" "$IMPORT_PW"
  check_rc "the import account creates a student entry" 0 \
    bash -c 'printf "%s\n" "dn: uid=e2409999,$1" objectClass:\ inetOrgPerson objectClass:\ eduPerson \
      objectClass:\ supannPerson uid:\ e2409999 cn:\ Nina\ Nouvelle sn:\ Nouvelle givenName:\ Nina \
      supannEtuId:\ 2409999 supannCodeINE:\ 1029384756Q supannMailPerso:\ nina.nouvelle@example.org \
      "supannRessourceEtat: {COMPTE}I:SupannCree" "supannRessourceEtatDate: {COMPTE}I:SupannCree::" |
      ldapadd -x -H "$2" -D "$3" -w "$4"' _ "$PEOPLE" "$LDAP" "$IMPORT_DN" "$IMPORT_PW"
  check_rc "the import account cannot set a password (50)" 50 modify_as "$IMPORT_DN" "$IMPORT_PW" \
"dn: $(person e2409999)
changetype: modify
replace: userPassword
userPassword: $hash"

  # Students and anonymous
  out=$(read_as "$(person cbernard)" "$DEMO_PW" "$(person cbernard)" '*')
  check "a student reads their own entry" bash -c 'grep -qi "^supannMailPerso:" <<<"$1"' _ "$out"
  check "... but not their password hash" bash -c '! grep -qi "^userPassword" <<<"$1"' _ "$out"
  check "a student cannot read another student" bash -c '! grep -q "^dn:" <<<"$1"' _ \
    "$(read_as "$(person cbernard)" "$DEMO_PW" "$(person ldurand)" '*' 2>/dev/null)"
  check_rc "a student cannot change their own mail (50)" 50 modify_as "$(person cbernard)" "$DEMO_PW" \
"dn: $(person cbernard)
changetype: modify
replace: mail
mail: moi@univ-demo.fr"
  check_rc "a student cannot change their own state (50)" 50 modify_as "$(person cbernard)" "$DEMO_PW" \
"dn: $(person cbernard)
changetype: modify
replace: supannRessourceEtat
supannRessourceEtat: {COMPTE}A:SupannActif"
  out=$(ldapsearch -x -LLL -H "$LDAP" -b "$SUFFIX" '(objectClass=*)' 2>&1)
  check "anonymous search of the whole tree returns no entry" bash -c '! grep -q "^dn:" <<<"$1"' _ "$out"
  out=$(ldapsearch -x -LLL -H "$LDAP" -b "$PEOPLE" '(supannMailPerso=*)' mail supannMailPerso 2>&1)
  check "anonymous search of ou=people returns no entry" bash -c '! grep -q "^dn:" <<<"$1"' _ "$out"
  check_rc "anonymous cannot write (8, modifications require authentication)" 8 \
    bash -c 'printf "%s\n" "dn: $1" changetype:\ modify replace:\ supannMailPerso supannMailPerso:\ x@example.org |
      ldapmodify -x -H "$2"' _ "$(person ldurand)" "$LDAP"

  # Indexes and schema, as seen by the admin
  out=$(ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H "$LDAPI" -b 'olcDatabase={1}mdb,cn=config' -s base olcDbIndex 2>&1)
  check "indexes: uid supannEtuId supannCodeINE supannMailPerso mail (eq), supannRessourceEtatDate (eq,pres)" bash -c '
    for a in "\(.*,\)\?uid\(,.*\)\? eq" "supannEtuId eq" "supannCodeINE eq" "supannMailPerso eq" "mail eq" "supannRessourceEtatDate eq,pres"; do
      grep -qi "^olcDbIndex: $a\$" <<<"$1" || { echo "missing $a"; exit 1; }
    done' _ "$out"
  check "the duplicate personal e-mail finds two accounts" bash -c \
    '[ "$(ldapsearch -x -LLL -H "$1" -D "$2" -w "$3" -b "$4" "(supannMailPerso=famille.jumeau@example.org)" 1.1 | grep -c "^dn:")" -eq 2 ]' \
    _ "$LDAP" "$SERVICE_DN" "$SERVICE_PW" "$PEOPLE"
  check "an escaped filter finds the entry with metacharacters" bash -c \
    '[ "$(ldapsearch -x -LLL -H "$1" -D "$2" -w "$3" -b "$4" "(sn=O'"'"'Brien \\28Dupont\\2a\\29)" 1.1 | grep -c "^dn:")" -eq 1 ]' \
    _ "$LDAP" "$SERVICE_DN" "$SERVICE_PW" "$PEOPLE"
}

# --- the two modes ----------------------------------------------------------------------
mode_slapadd() {
  mode=slapadd
  local dir="$tmp/slapadd"
  setup_dir "$dir" yes || { not_ok "slapadd -n0 of dev/slapd-init.ldif.in (with schema includes)"; return; }
  ok "slapadd -n0 of dev/slapd-init.ldif.in (schema by include:)"
  if "$SLAPADD" -q -b "$SUFFIX" -F "$dir/config" -l "$here/sample/tree.ldif" >"$dir/slapadd-tree.log" 2>&1; then
    ok "slapadd -b $SUFFIX sample/tree.ldif (database 1)"
  else
    not_ok "slapadd -b $SUFFIX sample/tree.ldif (database 1)"; sed 's/^/#   /' "$dir/slapadd-tree.log"; return
  fi
  start_slapd "$dir" || { not_ok "slapd starts"; return; }
  ok "slapd starts (ldapi + $LDAP)"
  apply_config_snippets
  run_checks
  stop_slapd
}

mode_runtime() {
  mode=runtime
  local dir="$tmp/runtime" f out
  setup_dir "$dir" no || { not_ok "slapadd -n0 of dev/slapd-init.ldif.in (system schemas only)"; return; }
  ok "slapadd -n0 of dev/slapd-init.ldif.in (system schemas only)"
  start_slapd "$dir" || { not_ok "slapd starts"; return; }
  ok "slapd starts (ldapi + $LDAP)"
  for f in eduperson supann guichet; do
    if out=$(ldapadd -Q -Y EXTERNAL -H "$LDAPI" -f "$here/schema/$f.ldif" 2>&1); then
      ok "ldapadd -Y EXTERNAL schema/$f.ldif on the running slapd"
    else
      not_ok "ldapadd -Y EXTERNAL schema/$f.ldif on the running slapd"; printf '#   %s\n' "$out"
    fi
  done
  apply_config_snippets
  if out=$(ldapadd -x -H "$LDAPI" -D "$ADMIN_DN" -w "$ADMIN_PW" -f "$here/sample/tree.ldif" 2>&1); then
    ok "ldapadd of sample/tree.ldif online (as $ADMIN_DN)"
  else
    not_ok "ldapadd of sample/tree.ldif online"; printf '#   %s\n' "$out" | tail -5; return
  fi
  run_checks
  stop_slapd
}

case "${1:-all}" in
  slapadd) mode_slapadd ;;
  runtime) mode_runtime ;;
  all) mode_slapadd; mode_runtime ;;
  *) echo "usage: $0 [slapadd|runtime]" >&2; exit 2 ;;
esac

echo "1..$count"
if [ "$failures" -gt 0 ]; then
  echo "# $failures of $count checks FAILED"
  exit 1
fi
echo "# all $count checks passed"
