"""Platform glue: journald-friendly logging with transaction context, and systemd's sd_notify."""
