#!/bin/sh
# A consistent copy of the database of the Docker Compose setup, taken while
# the bot runs, into backups/flowbot-YYYY-MM-DD-HHMMSS.db beside
# docker-compose.yml; copies older than BACKUP_KEEP_DAYS (14) days are
# deleted. Nightly, from cron (crontab -e; the path is where the project is):
#
#   30 3 * * * /srv/flowbot/deploy/docker-backup.sh >> /srv/flowbot/backups/backup.log 2>&1
#
# The copy is made inside the container's /data volume (`flowbot backup`
# never overwrites a file, hence the time in the name), copied out, and
# removed from the volume.
set -eu
cd "$(dirname "$0")/.."
keep_days=${BACKUP_KEEP_DAYS:-14}
dir=${BACKUP_DIR:-backups}
name=flowbot-$(date +%Y-%m-%d-%H%M%S).db

mkdir -p "$dir"
chmod 700 "$dir"
docker compose exec -T flowbot flowbot backup "/data/$name"
docker compose cp "flowbot:/data/$name" "$dir/$name"
docker compose exec -T flowbot rm -f "/data/$name"
chmod 600 "$dir/$name"
find "$dir" -maxdepth 1 -type f -name 'flowbot-*.db' -mmin +$((keep_days * 1440)) -delete
echo "backup: $dir/$name"
