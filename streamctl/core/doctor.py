"""doctor: is this server a safe home for streams, and what can it do?

Everything is asked of the server: the kind and version (INFO server, else HELLO), the topology
(INFO replication, CLUSTER INFO/NODES), the capabilities (COMMAND INFO for whole commands,
COMMAND DOCS for the arguments of a command, never a version number), the eviction policy and
persistence (CONFIG GET, else INFO), and what the user may run (each command streamctl uses is
queued inside MULTI and discarded: the ACL check happens when a command is queued, so a refused
command is named and nothing is ever executed). What the server will not tell (CONFIG or INFO
refused by an ACL or a managed service) is a finding at level `unknown`, never a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError, ResponseError

from streamctl.config import Settings
from streamctl.core.connection import (
    Client,
    default_node,
    describe_target,
    is_cluster,
    node_client,
    primaries,
    sentinel_of,
)
from streamctl.core.models import Endpoint
from streamctl.core.models_monitoring import (
    ERROR,
    LEVELS,
    OK,
    UNKNOWN,
    WARNING,
    Capability,
    DoctorReport,
    Finding,
    Topology,
)
from streamctl.core.wire import raw_command, raw_pipeline
from streamctl.wording import count_noun

REPLICA_LAG_S = 10  # a replica that has not acknowledged for longer is far behind
NAMED = 10  # streams named in a finding at most
TTL_BATCH = 1000
PROBE_KEY = "streamctl:doctor:probe"  # never written: the probes are discarded with MULTI


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(reply: list[Any]) -> dict[str, Any]:
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


def _info(node: Client, section: str) -> dict[str, str] | None:
    """An INFO section as {field: value}; None when INFO is refused."""
    try:
        text = _text(raw_command(node, "INFO", section))
    except ResponseError:
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def _config(node: Client, *names: str) -> dict[str, str] | None:
    """CONFIG GET of each name; None when CONFIG is refused."""
    out: dict[str, str] = {}
    try:
        for name in names:
            out.update(
                {k: _text(v) for k, v in _record(raw_command(node, "CONFIG", "GET", name)).items()}
            )
    except ResponseError:
        return None
    return out


def _where(node: Client, many: bool) -> str:
    """' on host:port' for one primary of several (a cluster); '' on a single server."""
    if not many:
        return ""
    kw = node.connection_pool.connection_kwargs
    return f" on {kw.get('host')}:{kw.get('port')}"


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:NAMED])
    return shown + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


# ---- the report ----


def diagnose(client: Client, settings: Settings | None = None) -> DoctorReport:
    """Everything doctor reports about the server `client` reaches (every primary of a
    cluster). Connection failures raise (exit 3); refusals become `unknown` findings."""
    node = default_node(client)
    findings: list[Finding] = []
    server, version = _kind(node, findings)
    nodes = primaries(client)
    topology = _topology(client, node, nodes, findings)
    capabilities = _capabilities(node)
    _eviction(nodes, findings)
    _persistence(nodes, findings)
    _permissions(client, findings)
    order = {level: i for i, level in enumerate(LEVELS)}
    return DoctorReport(
        url=describe_target(settings),
        server=server,
        version=version,
        topology=topology,
        capabilities=tuple(capabilities),
        findings=tuple(sorted(findings, key=lambda f: order[f.level])),
        endpoint=_endpoint(client),
    )


def _endpoint(client: Client) -> Endpoint | None:
    from streamctl.core.endpoint import endpoint_of

    try:
        return endpoint_of(client)
    except RedisError:  # doctor reports what it can
        return None


def _kind(node: Client, findings: list[Finding]) -> tuple[str, str]:
    info = _info(node, "server")
    if info is not None:
        if "valkey_version" in info:
            return "valkey", info["valkey_version"]
        if info.get("server_name") == "valkey":
            return "valkey", info.get("redis_version", "unknown")
        return "redis", info.get("redis_version", "unknown")
    try:
        hello = _record(raw_command(node, "HELLO"))
        return _text(hello["server"]), _text(hello["version"])
    except (ResponseError, KeyError):
        findings.append(
            Finding(
                "server",
                UNKNOWN,
                "INFO and HELLO are refused: the server's kind and version are unknown",
                "grant the user +info (or +hello) to see them",
            )
        )
        return "unknown", "unknown"


# ---- topology and replication ----


def _topology(
    client: Client, node: Client, nodes: list[Client], findings: list[Finding]
) -> Topology:
    if is_cluster(client):
        topology = _cluster_topology(node, findings)
    else:
        info = _info(node, "replication")
        if info is None:
            findings.append(
                Finding(
                    "replication",
                    UNKNOWN,
                    "INFO is refused: the role and the replicas are unknown",
                    "grant the user +info to see them",
                )
            )
            return Topology("unknown", detail="INFO refused")
        if info.get("role") == "slave":
            primary = f"{info.get('master_host')}:{info.get('master_port')}"
            link = info.get("master_link_status", "unknown")
            findings.append(
                Finding(
                    "replication",
                    WARNING,
                    f"this server is a replica of {primary} (link {link}): it refuses writes "
                    "(publish, ack, claim, group changes)",
                    f"give the primary's URL ({primary}) for anything but reading",
                )
            )
            return Topology("replica", primaries=(primary,), detail=f"link {link}")
        found = sentinel_of(client)
        if found is not None:  # the primary the Sentinels name for this master
            topology = Topology(
                "sentinel",
                replicas=tuple(_replicas(info)),
                detail=f"Sentinel-managed primary of master {found[1].master!r}",
            )
        else:
            topology = Topology("standalone", replicas=tuple(_replicas(info)))
    _replication(nodes, findings)
    return topology


def _replicas(info: dict[str, str]) -> list[str]:
    out = []
    for key, value in info.items():
        if key.startswith("slave") and key[5:].isdigit():
            fields = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
            out.append(f"{fields.get('ip')}:{fields.get('port')}")
    return out


def _cluster_topology(node: Client, findings: list[Finding]) -> Topology:
    try:
        info = _record_lines(_text(raw_command(node, "CLUSTER", "INFO")))
        lines = _text(raw_command(node, "CLUSTER", "NODES")).splitlines()
    except ResponseError as exc:
        findings.append(
            Finding(
                "cluster",
                UNKNOWN,
                f"CLUSTER INFO/NODES refused ({_text(exc)}): the cluster's state is unknown",
                "grant the user +cluster|info and +cluster|nodes",
            )
        )
        return Topology("cluster", detail="CLUSTER refused")
    primaries_: list[str] = []
    replicas: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        address = parts[1].split("@", 1)[0]
        flags = parts[2].split(",")
        if "master" in flags:
            primaries_.append(address)
        elif "slave" in flags:
            replicas.append(address)
    ok_slots = int(info.get("cluster_slots_ok", "0"))
    served = info.get("cluster_state") == "ok" and ok_slots == 16384
    if not served:
        findings.append(
            Finding(
                "cluster",
                ERROR,
                f"the cluster is {info.get('cluster_state', 'unknown')}: {ok_slots} of 16384 "
                "slots are served; streams in the other slots cannot be read or written",
                "assign the missing slots or bring their primaries back "
                "(redis-cli --cluster check HOST:PORT shows which)",
            )
        )
    return Topology(
        "cluster",
        primaries=tuple(sorted(primaries_)),
        replicas=tuple(sorted(replicas)),
        slots_served=served,
        detail=f"{ok_slots} of 16384 slots served",
    )


def _record_lines(text: str) -> dict[str, str]:
    return dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line)


def _replication(nodes: list[Client], findings: list[Finding]) -> None:
    """Replicas far behind their primary (no acknowledgement for REPLICA_LAG_S, or not
    online)."""
    behind: list[str] = []
    count = 0
    for node in nodes:
        info = _info(node, "replication")
        if info is None:
            continue
        for key, value in info.items():
            if not (key.startswith("slave") and key[5:].isdigit()):
                continue
            count += 1
            fields = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
            name = f"{fields.get('ip')}:{fields.get('port')}"
            state = fields.get("state", "")
            lag = int(fields.get("lag", "0") or 0)
            offset = int(fields.get("offset", "0") or 0)
            primary_offset = int(info.get("master_repl_offset", "0") or 0)
            if state != "online" or lag > REPLICA_LAG_S:
                behind.append(
                    f"{name} ({state or 'unknown state'}, last ack {lag}s ago, "
                    f"{max(0, primary_offset - offset)} bytes behind)"
                )
    if behind:
        findings.append(
            Finding(
                "replication",
                WARNING,
                "replicas far behind: " + "; ".join(behind) + " (a failover now loses the "
                "entries they lack)",
                "check the replicas' links and load (INFO replication on each)",
            )
        )
    elif count:
        online = count_noun(count, "replica", "replicas", grouped=False)
        findings.append(Finding("replication", OK, f"{online} online and in step"))


# ---- capabilities ----


# (capability, commands that must exist, (command, argument token) pairs of which one must be
# documented); both empty means nothing to ask
_CAPABILITIES: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]], ...] = (
    ("consumer-group lag fields (entries-read, lag)", (), (("XGROUP|CREATE", "ENTRIESREAD"),)),
    ("XAUTOCLAIM", ("XAUTOCLAIM",), ()),
    ("XACKDEL / XDELEX", ("XACKDEL", "XDELEX"), ()),
    ("ACKED trimming (XADD/XTRIM KEEPREF, DELREF, ACKED)", (), (("XTRIM", "ACKED"),)),
    ("XREADGROUP CLAIM", (), (("XREADGROUP", "CLAIM"),)),
    ("XADD IDMP (idempotent producer)", (), (("XADD", "IDMP"), ("XADD", "IDMPAUTO"))),
    ("XNACK", ("XNACK",), ()),
)


def _tokens(arguments: Iterable[Any]) -> set[str]:
    """Every token of a COMMAND DOCS argument tree."""
    found: set[str] = set()
    for arg in arguments:
        spec = _record(arg)
        if "token" in spec:
            found.add(_text(spec["token"]).upper())
        if "arguments" in spec:
            found |= _tokens(spec["arguments"])
    return found


def _capabilities(node: Client) -> list[Capability]:
    commands = sorted({c for _, needed, _ in _CAPABILITIES for c in needed})
    documented = sorted({c for _, _, args in _CAPABILITIES for c, _ in args})
    existing: dict[str, bool] | None
    tokens: dict[str, set[str]] | None
    try:
        replies = raw_command(node, "COMMAND", "INFO", *commands)
        existing = {c: r is not None for c, r in zip(commands, replies, strict=True)}
    except ResponseError:
        existing = None
    try:
        docs = _record(raw_command(node, "COMMAND", "DOCS", *documented))
        tokens = {c: set() for c in documented}
        for name, doc in docs.items():
            tokens[name.upper()] = _tokens(_record(doc).get("arguments", []))
    except ResponseError:
        tokens = None
    out = []
    for name, needed, args in _CAPABILITIES:
        if needed:
            how = "COMMAND INFO " + " ".join(needed)
            available = None if existing is None else all(existing[c] for c in needed)
        else:
            how = "COMMAND DOCS " + ", ".join(f"{c} {t}" for c, t in args)
            available = None if tokens is None else any(t in tokens.get(c, set()) for c, t in args)
        if available is None:
            how += " (refused: unknown)"
        out.append(Capability(name, available, how))
    return out


# ---- eviction and persistence ----


def _eviction(nodes: list[Client], findings: list[Finding]) -> None:
    many = len(nodes) > 1
    for node in nodes:
        where = _where(node, many)
        config = _config(node, "maxmemory-policy", "maxmemory")
        if config is None:
            info = _info(node, "memory")
            if info is not None and "maxmemory_policy" in info:
                config = {
                    "maxmemory-policy": info["maxmemory_policy"],
                    "maxmemory": info.get("maxmemory", "0"),
                }
        if config is None:
            findings.append(
                Finding(
                    "maxmemory-policy",
                    UNKNOWN,
                    f"CONFIG and INFO are refused{where}: whether streams can be evicted is "
                    "unknown",
                    "check maxmemory-policy with your provider or an admin user: it should be "
                    "noeviction",
                )
            )
            continue
        policy = config.get("maxmemory-policy", "")
        limit = int(config.get("maxmemory", "0") or 0)
        if policy.startswith("allkeys-"):
            if limit:
                findings.append(
                    Finding(
                        "maxmemory-policy",
                        ERROR,
                        f"maxmemory-policy is {policy}{where} (maxmemory {limit} bytes): when "
                        "memory runs short the server deletes any key, streams included, with "
                        "their groups and pending entries",
                        "CONFIG SET maxmemory-policy noeviction (and in the config file), or "
                        "keep the streams on a server of their own",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "maxmemory-policy",
                        WARNING,
                        f"maxmemory-policy is {policy}{where}: no maxmemory is set now, but "
                        "once one is, the server deletes any key, streams included",
                        "CONFIG SET maxmemory-policy noeviction (and in the config file)",
                    )
                )
        elif policy.startswith("volatile-"):
            with_ttl = _streams_with_ttl(node)
            if with_ttl:
                findings.append(
                    Finding(
                        "maxmemory-policy",
                        WARNING,
                        f"maxmemory-policy is {policy}{where}: streams with a TTL can be "
                        f"evicted: {_names(with_ttl)}",
                        "PERSIST those streams, or CONFIG SET maxmemory-policy noeviction",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "maxmemory-policy",
                        OK,
                        f"maxmemory-policy is {policy}{where}: only keys with a TTL are "
                        "evicted, and no stream has one",
                    )
                )
        else:
            findings.append(Finding("maxmemory-policy", OK, f"maxmemory-policy is {policy}{where}"))


def _streams_with_ttl(node: Client) -> list[str]:
    names = [_text(k) for k in node.scan_iter(count=1000, _type="stream")]
    out: list[str] = []
    for start in range(0, len(names), TTL_BATCH):
        batch = names[start : start + TTL_BATCH]
        ttls = raw_pipeline(node, [("PTTL", n) for n in batch])
        out += [n for n, t in zip(batch, ttls, strict=True) if isinstance(t, int) and t >= 0]
    return sorted(out)


def _persistence(nodes: list[Client], findings: list[Finding]) -> None:
    many = len(nodes) > 1
    for node in nodes:
        where = _where(node, many)
        config = _config(node, "save", "appendonly")
        if config is None:
            info = _info(node, "persistence")
            if info is not None and info.get("aof_enabled") == "1":
                findings.append(Finding("persistence", OK, f"AOF is on{where}"))
            else:
                findings.append(
                    Finding(
                        "persistence",
                        UNKNOWN,
                        f"CONFIG is refused{where}: whether the streams survive a restart "
                        "is unknown",
                        "check with your provider or an admin user that AOF or RDB "
                        "snapshots are on",
                    )
                )
            continue
        aof = config.get("appendonly", "no") == "yes"
        rdb = config.get("save", "").strip() != ""
        if aof or rdb:
            kinds = " and ".join(k for k, on in (("AOF", aof), ("RDB snapshots", rdb)) if on)
            findings.append(Finding("persistence", OK, f"{kinds} on{where}"))
        else:
            findings.append(
                Finding(
                    "persistence",
                    WARNING,
                    f'no persistence{where} (appendonly no, save ""): a restart loses every '
                    "stream, group and pending entry",
                    "CONFIG SET appendonly yes (and in the config file), or set a save "
                    "schedule; replicas alone do not survive a full restart",
                )
            )


# ---- what the user may run ----

K = PROBE_KEY
# each command streamctl sends, a harmless form of it (never executed), and what needs it
_NEEDED: tuple[tuple[str, tuple[Any, ...], str], ...] = (
    ("XADD", ("XADD", K, "*", "f", "v"), "publish, import, replay, redrive"),
    ("XREAD", ("XREAD", "STREAMS", K, "0"), "tail"),
    ("XREADGROUP", ("XREADGROUP", "GROUP", "g", "c", "STREAMS", K, ">"), "tail --group"),
    ("XRANGE", ("XRANGE", K, "-", "+"), "range, export, replay"),
    ("XREVRANGE", ("XREVRANGE", K, "+", "-"), "info, group ls"),
    ("XLEN", ("XLEN", K), "check"),
    ("XINFO", ("XINFO", "STREAM", K), "ls, info, group ls, check, top, metrics"),
    ("XGROUP", ("XGROUP", "CREATE", K, "g", "$"), "group create/destroy/setid/delconsumer"),
    ("XACK", ("XACK", K, "g", "0-1"), "ack, tail --group"),
    ("XPENDING", ("XPENDING", K, "g"), "pending, check, metrics"),
    ("XCLAIM", ("XCLAIM", K, "g", "c", "0", "0-1"), "pending --claim --id"),
    ("XAUTOCLAIM", ("XAUTOCLAIM", K, "g", "c", "0", "0"), "pending --claim"),
    ("XTRIM", ("XTRIM", K, "MAXLEN", "0"), "trim"),
    ("XDEL", ("XDEL", K, "0-1"), "redrive"),
    (
        "EVAL",
        ("EVAL", "return 1", "0"),
        "pending --dead-letter, group destroy, group delconsumer, redrive",
    ),
    ("SCAN", ("SCAN", "0"), "ls, check, top, metrics"),
    ("TYPE", ("TYPE", K), "every command naming a stream"),
)


def _permissions(client: Client, findings: list[Finding]) -> None:
    node = node_client(client, PROBE_KEY)
    try:
        name = _text(raw_command(node, "ACL", "WHOAMI"))
        user = repr(name)
    except ResponseError:
        name, user = "<user>", "the current user"
    pool = node.connection_pool
    conn: Any = pool.get_connection()
    replies: list[Any] = []
    try:
        conn.send_command("MULTI")
        try:
            conn.read_response()
        except ResponseError as exc:
            findings.append(
                Finding(
                    "acl",
                    UNKNOWN,
                    f"MULTI is refused ({_text(exc)}): which commands {user} may run is unknown",
                    "grant +multi +discard so doctor can check the user's commands",
                )
            )
            return
        # queued, never executed: DISCARD drops them all
        conn.send_packed_command(
            conn.pack_commands([args for _, args, _ in _NEEDED] + [("DISCARD",)])
        )
        for _ in range(len(_NEEDED) + 1):
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    finally:
        # closed whatever happened: the server discards a transaction whose connection closes
        # (even when DISCARD itself was refused), so no later command can land in it
        conn.disconnect()
        pool.release(conn)
    denied = [
        (name, needs)
        for (name, _, needs), reply in zip(_NEEDED, replies, strict=False)
        if isinstance(reply, ResponseError)
        and _text(reply).startswith("NOPERM")
        and "key" not in _text(reply).lower().split("(", 1)[0]
    ]
    if denied:
        names = ", ".join(n for n, _ in denied)
        affected = "; ".join(f"{n}: {needs}" for n, needs in denied)
        grant = " ".join(f"+{n.lower()}" for n, _ in denied)
        findings.append(
            Finding(
                "acl",
                WARNING,
                f"user {user} may not run {names} (affected: {affected})",
                f"ACL SETUSER {name} {grant}, or run those commands as another user",
            )
        )
    else:
        findings.append(Finding("acl", OK, f"user {user} may run every command streamctl uses"))
