def test_publish_then_range(cli, r):
    res = cli("publish", "orders", "order_id=42", "status=created")
    assert res.exit_code == 0, res.stderr
    new_id = res.stdout.strip()
    out = cli("range", "orders", "-o", "ndjson")
    assert out.exit_code == 0
    assert out.ndjson()[0]["id"] == new_id
    assert out.ndjson()[0]["fields"] == {"order_id": "42", "status": "created"}
