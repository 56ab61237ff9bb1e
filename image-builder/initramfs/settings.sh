# Settings of the appliance: reading fazt.toml, and turning its [wifi] table into a
# wpa_supplicant config. Sourced by /init (busybox ash); image-builder/test-settings runs
# the same functions on the build machine. POSIX sh only.
#
# The WiFi password is never printed: not in the messages here, not by /init.

FAZT_TOML=${FAZT_TOML:-/boot/fazt.toml}

# conf KEY [DEFAULT]: a value of fazt.toml; KEY is "name" or "section.name". Understands
# the subset of TOML the shipped file uses: `key = "string"` or `key = bare` (to a #).
conf() {
  v=$(awk -v want="$1" '
    /^[ \t]*(#|$)/ { next }
    /^[ \t]*\[/ { s = $0; gsub(/[][ \t]/, "", s); sec = s "."; next }
    /=/ {
      k = $0; sub(/=.*/, "", k); gsub(/[ \t]/, "", k)
      v = $0; sub(/^[^=]*=[ \t]*/, "", v)
      if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) } else { sub(/[ \t]*#.*$/, "", v); sub(/[ \t]+$/, "", v) }
      if (sec k == want) { print v; exit }
    }' "$FAZT_TOML" 2>/dev/null)
  echo "${v:-$2}"
}

# wifi_wanted: true when fazt.toml asks for WiFi (a [wifi] ssid).
wifi_wanted() {
  [ -n "$(conf wifi.ssid)" ]
}

# wifi_config COUNTRY SSID PASSWORD OUT: checks the values and writes a wpa_supplicant
# config to OUT (mode 600, replaced in one rename). A refused value prints one line per
# problem (never the password) and returns 1 with OUT untouched.
#   COUNTRY   two letters (ISO 3166), e.g. DE: the radio's legal channels and power
#   SSID      1-32 bytes
#   PASSWORD  WPA2/WPA3-personal passphrase, 8-63 printable ASCII characters; or 64 hex
#             digits (a raw key); or empty for an open network
wifi_config() {
  _country=$1 _ssid=$2 _pass=$3 _out=$4 _bad=0
  case $_country in
    [A-Za-z][A-Za-z]) _country=$(printf %s "$_country" | tr a-z A-Z) ;;
    '') echo "wifi: country is missing: two letters such as DE, GB or US (it sets the legal channels)"; _bad=1 ;;
    *) echo "wifi: country '$_country' is not a two-letter code such as DE, GB or US"; _bad=1 ;;
  esac
  _n=$(printf %s "$_ssid" | wc -c)
  if [ "$_n" -lt 1 ] || [ "$_n" -gt 32 ]; then
    echo "wifi: ssid must be 1 to 32 bytes long (it is $_n)"; _bad=1
  fi
  case $_ssid in *'\'*) echo "wifi: ssid has a backslash: fazt.toml escapes are not read; write the name as it is"; _bad=1 ;; esac
  _n=$(printf %s "$_pass" | wc -c)
  if [ "$_n" -eq 64 ] && ! printf %s "$_pass" | grep -q '[^0-9A-Fa-f]'; then
    _psk="psk=$_pass"
  elif [ "$_n" -eq 0 ]; then
    _psk="key_mgmt=NONE"
  elif [ "$_n" -lt 8 ] || [ "$_n" -gt 63 ]; then
    echo "wifi: password must be 8 to 63 characters (or 64 hex digits, or empty for an open network); it has $_n"; _bad=1
  elif printf %s "$_pass" | LC_ALL=C grep -q '[^ -~]'; then
    echo "wifi: password has a character that is not printable ASCII; WPA passphrases allow only those"; _bad=1
  elif printf %s "$_pass" | grep -q '\\'; then
    echo "wifi: password has a backslash: fazt.toml escapes are not read; choose a password without one"; _bad=1
  else
    _psk="psk=\"$_pass\""
  fi
  [ $_bad = 0 ] || return 1
  # The SSID goes in as hex: any byte is fine there, and nothing in it can break the file.
  _hex=$(printf %s "$_ssid" | od -An -v -tx1 | tr -d ' \n')
  (
    umask 077
    {
      echo "# written by fazt's init from fazt.toml [wifi]; in RAM only"
      echo "country=$_country"
      echo "network={"
      echo "  ssid=$_hex"
      echo "  scan_ssid=1"
      echo "  $_psk"
      echo "}"
    } > "$_out.new"
  ) && mv "$_out.new" "$_out"
}
