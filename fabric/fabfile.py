"""Deployment recipes for the hc toolkit (Fabric 3). No build logic: ship what `cargo build --release` made.

Usage, from the workspace root after a release build:
    fab -H db1.example.org apply-schema
    fab -H app1.example.org,app2.example.org deploy
"""

from pathlib import Path

from fabric import task

ROOT = Path(__file__).resolve().parent.parent
BINARIES = ["hchk-ping", "hc-sendalerts", "hc-prune", "hc-backup", "hc-metrics"]
DAEMONS = ["hchk-ping", "hc-sendalerts"]
TIMERS = ["hc-prune", "hc-backup", "hc-metrics"]


@task
def deploy(c, target_dir="target/release"):
    """Install binaries and units, then restart the daemons and enable the timers."""
    for name in BINARIES:
        src = ROOT / target_dir / name
        c.put(str(src), f"/tmp/{name}")
        c.sudo(f"install -m 0755 /tmp/{name} /usr/local/bin/{name}")
        c.run(f"rm -f /tmp/{name}")
    for unit in sorted((ROOT / "systemd").glob("*.service")) + sorted((ROOT / "systemd").glob("*.timer")):
        c.put(str(unit), f"/tmp/{unit.name}")
        c.sudo(f"install -m 0644 /tmp/{unit.name} /etc/systemd/system/{unit.name}")
        c.run(f"rm -f /tmp/{unit.name}")
    c.sudo("install -d -m 0755 /etc/hc")
    c.sudo("install -d -m 0700 /etc/hc/credentials")
    c.sudo("test -f /etc/hc/hc.env || echo 'create /etc/hc/hc.env from systemd/hc.env.example'")
    c.sudo("systemctl daemon-reload")
    for name in DAEMONS:
        c.sudo(f"systemctl enable {name}.service")
        c.sudo(f"systemctl restart {name}.service")
    for name in TIMERS:
        c.sudo(f"systemctl enable --now {name}.timer")


@task
def apply_schema(c, database="hc"):
    """Create the toolkit's tables in an empty database (idempotent; never alters existing tables)."""
    c.put(str(ROOT / "hc-core" / "sql" / "schema.sql"), "/tmp/hc-schema.sql")
    c.sudo(f"psql -v ON_ERROR_STOP=1 -1 -d {database} -f /tmp/hc-schema.sql", user="postgres")
    c.run("rm -f /tmp/hc-schema.sql")


@task
def status(c):
    """Show the state of every hc unit."""
    units = " ".join([f"{n}.service" for n in DAEMONS] + [f"{n}.timer" for n in TIMERS])
    c.sudo(f"systemctl --no-pager status {units}", warn=True)
