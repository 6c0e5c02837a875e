import psycopg


def test_throwaway_database_is_real_and_utf8(database_url):
    with psycopg.connect(database_url) as conn:
        enc = conn.execute("SHOW server_encoding").fetchone()[0]
        conn.execute("CREATE TABLE t (x text)")
        conn.execute("INSERT INTO t VALUES ('привет')")
        assert conn.execute("SELECT x FROM t").fetchone()[0] == "привет"
    assert enc == "UTF8"


def test_restartable_server_comes_back(restartable_pg):
    url = restartable_pg.create_database()
    restartable_pg.stop()
    restartable_pg.start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
