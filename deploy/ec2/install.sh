#!/bin/bash
# Installs mcp-gateway from an unpacked bundle (bundle.sh) on Amazon Linux 2023 and starts it under
# systemd. The EC2 template's user data runs it at first boot, after checking the bundle's SHA-256.
#
#   install.sh --data-root s3://bucket/prefix/ --gateway-id ID --region REGION [--accounts 1234,5678]
#              [--allow-write true|false] [--allowed-hosts '*'] [--log-group NAME] [--log-level info]
#              [--behind-alb true|false]
#
# With MCP_INSTALL_ROOT set (tests), every file goes under that folder and nothing is installed
# with dnf or started with systemctl: the commands are printed instead.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=${MCP_INSTALL_ROOT:-}
data_root="" gateway_id="" region="" accounts="" allow_write=false allowed_hosts="*" log_group="" log_level="info,rmcp=warn"
behind_alb=false

die() { echo "install.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case "$1" in
    --data-root) data_root=$2 ;;
    --gateway-id) gateway_id=$2 ;;
    --region) region=$2 ;;
    --accounts) accounts=$2 ;;
    --allow-write) allow_write=$2 ;;
    --allowed-hosts) allowed_hosts=$2 ;;
    --log-group) log_group=$2 ;;
    --log-level) log_level=$2 ;;
    --behind-alb) behind_alb=$2 ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done

# Every value lands in a config file: check its shape first, so none can break out of its line.
[[ $data_root =~ ^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([A-Za-z0-9!_.\'()-]+/)*$ ]] || die "--data-root must be s3://bucket/prefix/ (got '$data_root')"
[[ $gateway_id =~ ^[A-Za-z0-9._:-]{1,128}$ ]] || die "--gateway-id must be 1-128 of A-Z a-z 0-9 . _ : - (got '$gateway_id')"
[[ $region =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "--region must be an AWS region such as us-east-1 (got '$region')"
[[ -z $accounts || $accounts =~ ^[0-9]{12}(,[0-9]{12})*$ ]] || die "--accounts must be comma-separated 12-digit account ids (got '$accounts')"
[[ $allow_write == true || $allow_write == false ]] || die "--allow-write must be true or false (got '$allow_write')"
hosts_pattern='^[][A-Za-z0-9.:*,-]{1,1024}$'  # names, [IPv6], ports, commas, or *
[[ $allowed_hosts =~ $hosts_pattern ]] || die "--allowed-hosts must be host names, comma-separated, or * (got '$allowed_hosts')"
[[ -z $log_group || $log_group =~ ^[A-Za-z0-9._/#-]{1,512}$ ]] || die "--log-group is not a CloudWatch log group name (got '$log_group')"
[[ $log_level =~ ^[A-Za-z0-9_:,=]{1,256}$ ]] || die "--log-level must be a tracing filter such as info (got '$log_level')"
[[ $behind_alb == true || $behind_alb == false ]] || die "--behind-alb must be true or false (got '$behind_alb')"
[ -x "$here/mcp-gateway" ] || die "no executable mcp-gateway beside install.sh"

run() {
  if [ -n "$root" ]; then echo "would run: $*"; else "$@"; fi
}

install -d -m 0755 "$root/usr/local/bin" "$root/etc/mcp-gateway" "$root/etc/systemd/system" "$root/etc/logrotate.d"
install -d -m 0750 "$root/var/log/mcp-gateway"
install -m 0755 "$here/mcp-gateway" "$root/usr/local/bin/mcp-gateway"
install -m 0644 "$here/mcp-gateway.service" "$root/etc/systemd/system/mcp-gateway.service"

# Two `db` workers may each use a quarter of the memory (64 MiB to 1 GiB), leaving the rest to
# the server and the agents.
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
db_mib=$(( mem_kib / 1024 / 4 ))
db_mib=$(( db_mib < 64 ? 64 : db_mib > 1024 ? 1024 : db_mib ))
# Behind the ALB, idle keep-alive connections must outlive the ALB's (900 s), or it sends requests
# on connections the gateway just closed (502s); the ALB itself takes slow clients' headers.
header_timeout=10
[ "$behind_alb" = false ] || header_timeout=910

# The settings `serve` reads (see `mcp-gateway serve --help`); readable by root and systemd only.
umask 077
cat > "$root/etc/mcp-gateway/gateway.env" <<ENV
DATA_ROOT=$data_root
AWS_REGION=$region
ALLOW_WRITE=$allow_write
LOG_LEVEL=$log_level
MCP_ADDR=0.0.0.0:8080
MCP_ALLOWED_HOSTS=$allowed_hosts
MCP_HEADER_TIMEOUT=$header_timeout
MCP_DB_MEMORY=${db_mib}MiB
ENV

# Who may call: callers proving an IAM identity with an STS token bound to this gateway
# (`mcp-sigv4-proxy --auth sts --gateway-id ID`), of these accounts. An access.toml in the bundle
# replaces this one (it then holds the [auth] section, rules and limits).
if [ -f "$here/access.toml" ]; then
  install -m 0600 "$here/access.toml" "$root/etc/mcp-gateway/access.toml"
else
  {
    echo "[auth.iam]"
    echo "gateway_id = \"$gateway_id\""
    if [ -n "$accounts" ]; then
      echo "accounts = [\"${accounts//,/\", \"}\"]"
    fi
  } > "$root/etc/mcp-gateway/access.toml"
fi
umask 022
"$root/usr/local/bin/mcp-gateway" --access "$root/etc/mcp-gateway/access.toml" access check > /dev/null \
  || die "the access file does not validate (see above)"

cat > "$root/etc/logrotate.d/mcp-gateway" <<'ROTATE'
/var/log/mcp-gateway/gateway.log {
    daily
    maxsize 100M
    rotate 7
    compress
    missingok
    notifempty
    copytruncate
}
ROTATE

if [ -n "$log_group" ]; then
  agent_config="$root/opt/aws/amazon-cloudwatch-agent/etc/mcp-gateway.json"
  install -d -m 0755 "$(dirname "$agent_config")"
  cat > "$agent_config" <<AGENT
{
  "agent": { "run_as_user": "root" },
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {
            "file_path": "/var/log/mcp-gateway/gateway.log",
            "log_group_name": "$log_group",
            "log_stream_name": "{instance_id}",
            "retention_in_days": -1
          }
        ]
      }
    }
  }
}
AGENT
  run dnf install -y -q amazon-cloudwatch-agent logrotate
  run /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
    -c "file:/opt/aws/amazon-cloudwatch-agent/etc/mcp-gateway.json"
else
  run dnf install -y -q logrotate
fi

run systemctl daemon-reload
run systemctl enable --now mcp-gateway.service
if [ -z "$root" ]; then
  # Up when /health answers (S3 and the catalogue are reached lazily; /ready says more).
  for _ in $(seq 1 30); do
    if /usr/local/bin/mcp-gateway health --url http://127.0.0.1:8080/health > /dev/null 2>&1; then
      echo "install.sh: mcp-gateway is up"
      exit 0
    fi
    sleep 1
  done
  journalctl -u mcp-gateway.service --no-pager -n 50 >&2 || true
  tail -n 50 /var/log/mcp-gateway/gateway.log >&2 || true
  die "mcp-gateway did not answer /health within 30 s"
fi
