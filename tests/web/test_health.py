from sqlalchemy import create_engine


def test_healthz_names_database_and_queue(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["queue"] == "ok"


def test_healthz_is_503_when_the_database_is_down(app, client):
    rt = app.extensions["linkpay"]
    rt.db.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["database"].startswith("down")
    assert response.json["queue"] == "ok"


def test_every_page_carries_the_security_headers(client):
    response = client.get("/healthz")
    policy = response.headers["Content-Security-Policy"]
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
