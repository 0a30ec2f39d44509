"""metrics and doctor on the real 3-primary cluster: every primary is read."""

from __future__ import annotations

from tests.cli.test_metrics import promtool_ok, samples
from tests.cluster.conftest import node_of, primary_names


def test_metrics_cover_every_primary(cli_cluster, rc, spread):
    names = spread("orders", 6)
    assert {node_of(rc, n) for n in names} == set(primary_names(rc))
    for i, name in enumerate(names):
        for j in range(i + 1):
            rc.xadd(name, {"n": j})
        rc.xgroup_create(name, "billing", "0")
    rc.xreadgroup("billing", "w1", {names[0]: ">"}, count=1)
    res = cli_cluster("metrics", "--consumers")
    assert res.exit_code == 0, res.stderr
    promtool_ok(res.stdout)
    s = samples(res.stdout)
    assert s["streamctl_streams"] == 6
    for i, name in enumerate(names):
        assert s[f'streamctl_stream_length{{stream="{name}"}}'] == i + 1
        lag = i + 1 - (1 if i == 0 else 0)
        assert s[f'streamctl_group_lag{{group="billing",stream="{name}"}}'] == lag
    key = f'streamctl_consumer_pending{{consumer="w1",group="billing",stream="{names[0]}"}}'
    assert s[key] == 1


def test_metrics_max_streams_over_the_cluster(cli_cluster, rc, spread):
    names = spread("s", 6)
    for name in names:
        rc.xadd(name, {"a": 1})
    s = samples(cli_cluster("metrics", "--max-streams", "4").stdout)
    assert s["streamctl_streams_truncated"] == 1
    shown = sorted(k for k in s if k.startswith("streamctl_stream_length"))
    assert shown == [f'streamctl_stream_length{{stream="{n}"}}' for n in sorted(names)[:4]]


def test_doctor_on_the_cluster(cli_cluster, rc, cluster):
    res = cli_cluster("doctor", "-o", "json")
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert report["topology"]["mode"] == "cluster"
    assert report["topology"]["slots_served"] is True
    assert sorted(report["topology"]["primaries"]) == sorted(primary_names(rc))
    persistence = [f for f in report["findings"] if f["check"] == "persistence"]
    assert len(persistence) == 3  # one per primary, each named
    assert all(f["level"] == "warning" and " on 127.0.0.1:" in f["message"] for f in persistence)
