// Where MOR's realtime peers live, as Asterisk finds them: extconfig.conf maps sippeers to a
// database section and table (`sippeers => mysql,SECTION,TABLE`), res_config_mysql.conf holds the
// credentials of SECTION. Shell text (sed, awk) shared by the audit's script and fail2ban's
// ignore command (templates/fail2ban/ignore-peers.sh.hbs), so both read the files alike.

/** res_config_mysql.conf's section as a MySQL option file: [client] credentials, [mysql] database. */
export const OPTION_FILE_AWK = String.raw`BEGIN { database = "" }
{ line = $0; gsub(/\\;/, "\001", line); sub(/;.*/, "", line); gsub(/\001/, ";", line) }
line ~ /^[ \t]*\[/ { name = line; sub(/^[ \t]*\[/, "", name); sub(/\].*/, "", name); on = (name == section); next }
on && line ~ /=/ {
  key = line; sub(/[ \t]*=.*/, "", key); gsub(/^[ \t]+/, "", key)
  value = line; sub(/^[^=]*=>?[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
  gsub(/\\/, "\\\\", value); gsub(/"/, "\\\"", value)
  option = (key == "dbhost") ? "host" : (key == "dbuser") ? "user" : (key == "dbpass") ? "password" : (key == "dbport") ? "port" : (key == "dbsock") ? "socket" : ""
  if (option != "") client = client option "=\"" value "\"\n"
  if (key == "dbname") database = value
}
END { printf "[client]\n%s[mysql]\ndatabase=\"%s\"\n", client, database }`;

/** The section and table extconfig.conf maps sippeers to (`sippeers => mysql,SECTION,TABLE`): letters, digits and _ only. */
export const SIPPEERS_SED = String.raw`s/^[[:space:]]*sippeers[[:space:]]*=>[[:space:]]*mysql[[:space:]]*,[[:space:]]*\([A-Za-z0-9_-]\{1,64\}\)[[:space:]]*,[[:space:]]*\([A-Za-z0-9_]\{1,64\}\)[[:space:]]*\(;.*\)\{0,1\}$/\1 \2/p`;
