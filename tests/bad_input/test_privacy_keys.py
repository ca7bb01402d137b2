"""Bad input — privacy: pseudonymous keys that cannot be reversed. With the old public default salt and sequential
C######## ids, every customer_key mapped back to its id through a table anyone could compute."""
import hashlib
import os
import stat
import subprocess
import sys

import pytest
from loyalty_lab import LoyaltyLabError, load_settings
from loyalty_lab.campaigns import pseudonymous_keys
from loyalty_lab.storage import PUBLIC_SALTS, salt_file

IDS = [f"C{n:08d}" for n in range(1, 201)]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    "Run outside any lab folder, so that no settings.ini is found."
    monkeypatch.chdir(tmp_path)


def settings(tmp_path, salt=None):
    flags = {"warehouse.path": str(tmp_path / "data" / "warehouse.duckdb")}
    if salt is not None:
        flags["privacy.pseudonym_salt"] = salt
    return load_settings(flags=flags, env={})


def public_table(salt):
    "What anyone can compute from a public salt: every sequential id's key."
    return {hashlib.sha256((salt + i).encode()).hexdigest()[:16] for i in IDS}


def test_without_a_setting_the_lab_creates_its_own_secret_salt_beside_the_warehouse(tmp_path):
    s = settings(tmp_path)
    assert not salt_file(s.warehouse.path).exists()
    keys = set(pseudonymous_keys(IDS, s.pseudonym_salt()))
    path = salt_file(s.warehouse.path)
    assert path == tmp_path / "data" / "warehouse.duckdb.salt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(keys) == len(IDS)
    for public in PUBLIC_SALTS:
        assert keys.isdisjoint(public_table(public))
    # stable: the next run (another Settings) gives the same keys
    assert set(pseudonymous_keys(IDS, settings(tmp_path).pseudonym_salt())) == keys


def test_two_labs_get_different_salts(tmp_path):
    assert settings(tmp_path / "a").pseudonym_salt() != settings(tmp_path / "b").pseudonym_salt()


@pytest.mark.parametrize("salt, why", [("loyalty-lab", "public"), ("change-me", "public"),
                                       ("s3cret", "too short to be secret")])
def test_a_public_or_short_salt_is_refused_with_the_way_out(tmp_path, salt, why):
    with pytest.raises(LoyaltyLabError, match=rf"\[privacy\] pseudonym_salt = {salt} \(command-line flag.*\) is {why}"
                       r".*map the pseudonymous keys back.*Remove the setting.*warehouse\.duckdb\.salt"):
        settings(tmp_path, salt).pseudonym_salt()
    assert not salt_file(tmp_path / "data" / "warehouse.duckdb").exists()


def test_a_configured_secret_is_used_as_is_and_no_salt_file_is_made(tmp_path):
    s = settings(tmp_path, "a-long-secret-of-our-own")
    assert s.pseudonym_salt() == "a-long-secret-of-our-own"
    assert set(pseudonymous_keys(IDS[:3], s.pseudonym_salt())) == {
        hashlib.sha256(("a-long-secret-of-our-own" + i).encode()).hexdigest()[:16] for i in IDS[:3]}
    assert not salt_file(s.warehouse.path).exists()


@pytest.mark.parametrize("content", ["", "loyalty-lab\n", "zz" * 32, "ab" * 31])
def test_a_damaged_salt_file_is_named_not_replaced(tmp_path, content):
    s = settings(tmp_path)
    path = salt_file(s.warehouse.path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(LoyaltyLabError, match=r"warehouse\.duckdb\.salt: the lab's salt file is damaged.*Restore it"):
        s.pseudonym_salt()
    assert path.read_text() == content


def test_processes_starting_together_agree_on_one_salt(tmp_path):
    code = ("import sys; from loyalty_lab import load_settings; "
            "print(load_settings(flags={'warehouse.path': sys.argv[1]}, env={}).pseudonym_salt())")
    target = str(tmp_path / "wh.duckdb")
    runs = [subprocess.Popen([sys.executable, "-c", code, target], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"}) for _ in range(4)]
    salts = {r.communicate(timeout=120)[0].strip() for r in runs}
    assert len(salts) == 1 and salts == {salt_file(tmp_path / "wh.duckdb").read_text().strip()}
