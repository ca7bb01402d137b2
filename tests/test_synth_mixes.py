"""Harder synthetic profiles: profile_mix = "address_only" (nothing shared across systems) and one-country locales."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from loyalty_lab import LoyaltyLabError, SynthConfig, generate
from loyalty_lab.synth import LOCALES, PROFILE_MIXES, _places, street_forms, write_programme

CLI = str(Path(sys.executable).parent / "loyalty-lab")
COUNTRY = {"en_AU": "AU", "en_US": "US", "de_DE": "DE", "pl_PL": "PL", "sr_RS": "RS", "default": "RS"}


def joined(prog) -> pd.DataFrame:
    "Profiles with their truth and the person's true identity (suffixed _true)."
    people = prog.truth["people"].add_suffix("_true").rename(columns={"person_id_true": "person_id"})
    return (prog.table("profiles").merge(prog.truth["profiles"], on=["source_system", "source_customer_id"],
                                         validate="one_to_one").merge(people, on="person_id", validate="many_to_one"))


def e164(phone: str, country: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(phone, country), phonenumbers.PhoneNumberFormat.E164)


@pytest.fixture(scope="module")
def au():
    "The same 1,500 people in Australia, with today's identifiers and with addresses only."
    return {mix: generate(customers=1500, seed=8, locale="en_AU", profile_mix=mix) for mix in PROFILE_MIXES}


def test_address_only_shares_no_phone_email_or_card_even_where_the_default_mix_does(au):
    for mix, prog in au.items():
        p = joined(prog)
        p["key"] = [e164(x, "AU") if x else "" for x in p.phone]
        multi = p[p.groupby("person_id").source_system.transform("nunique") > 1]
        shared = multi[multi.key != ""].groupby("person_id").key.agg(lambda k: k.duplicated().any())
        if mix == "default":  # the check can fail: today's people carry one number into every system
            assert shared.mean() > 0.8, shared.mean()
            continue
        assert (p.email == "").all() and (p.loyalty_card_number == "").all()
        assert not shared.any()  # no number in two profiles of one person …
        assert p.key[p.key != ""].is_unique  # … nor of two people
        assert (p.key != "").mean() == pytest.approx(0.4 * 0.92, abs=0.03)  # own_phone, less the missing ones
        assert (p.key != "").eq(p.own_phone).mean() > 0.9 and not (p.key != "")[~p.own_phone].any()
        assert (prog.truth["people"][["email", "phone"]] == "").all().all()


def test_every_locale_writes_valid_mobile_numbers_of_its_country_in_national_and_international_form():
    for locale, country in COUNTRY.items():
        for mix in PROFILE_MIXES:
            p = joined(generate(customers=300, seed=4, locale=locale, profile_mix=mix))
            assert (p.country == country).all()
            phones = p.phone[p.phone != ""]
            numbers = [phonenumbers.parse(x, country) for x in phones]
            bad = [x for x, n in zip(phones, numbers) if not phonenumbers.is_valid_number(n)
                   or phonenumbers.region_code_for_number(n) != country
                   or phonenumbers.number_type(n) not in (phonenumbers.PhoneNumberType.MOBILE,
                                                          phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)]
            assert not bad, (locale, mix, bad[:5])
            code = str(phonenumbers.country_code_for_region(country))
            international = phones.str.startswith(("+" + code, "00" + code))
            assert 0.2 < international.mean() < 0.8, (locale, international.mean())
            if mix == "default":  # every profile's number is its person's, however it is written
                with_phone = p[p.phone != ""]
                assert [e164(x, country) for x in with_phone.phone] == with_phone.phone_true.tolist(), locale


CONVENTION = {  # the canonical address (the truth's) and the postcode of each country
    "en_AU": (r"\d{1,3} [A-Z][A-Za-z' -]+ (Street|Road|Avenue|Drive|Court|Place|Crescent|Parade|Lane|Close|Terrace|"
              r"Way|Circuit|Highway|Boulevard|Grove)", r"\d{4}"),
    "en_US": (r"\d{1,4} [A-Z][A-Za-z' -]+ (Street|Avenue|Road|Drive|Lane|Boulevard|Court|Place|Way|Circle|Parkway|"
              r"Terrace|Highway)", r"\d{5}"),
    "de_DE": (r"[A-ZÄÖÜ][\w .-]*(straße|Straße|weg|Weg|platz|Platz|gasse|Gasse|ring|Ring|allee|Allee) \d{1,3}", r"\d{5}"),
    "pl_PL": (r"(ul\.|al\.|pl\.) [\w. -]+ \d{1,3}", r"\d\d-\d{3}"),
    "sr_RS": (r"[A-ZČĆŠŽĐ][\w. ]+ \d{1,3}", r"\d{5}"),
}


def test_addresses_follow_the_country_convention_and_vary_by_record():
    for locale, (address, postcode) in CONVENTION.items():
        prog = generate(customers=600, seed=5, locale=locale)
        people = prog.truth["people"]
        assert people.address.str.fullmatch(address).all(), (locale, people.address[~people.address.str.fullmatch(address)].head().tolist())
        assert people.postcode.str.fullmatch(postcode).all() and people.city.nunique() == 8
        p = joined(prog)
        home = p[~p.moved & (p.address != "")]
        # every record writes the person's street in one of its forms, with the house number kept
        places = _places(locale, 5)
        number = re.compile(r"^\d+ " if places.country.number_first else r" \d+$")
        street = lambda a: number.sub("", a)
        forms = {f for row in places.forms for f in row if f}
        assert home.address.map(street).isin(forms).all()
        assert (home.address.str.extract(r"(\d+)")[0] == home.address_true.str.extract(r"(\d+)")[0]).all()
        canonical = home.address == home.address_true
        assert canonical.eq(~home.address_abbreviated).all()
        assert 0.15 < home.address_abbreviated.mean() < 0.75, (locale, home.address_abbreviated.mean())
        # postcodes: the person's, or a spreadsheet's reformatting of it (Poland's hyphen, a US ZIP's leading zero)
        kept = home[(home.postcode != "") & (home.postcode_noise == "")]
        assert (kept.postcode == kept.postcode_true).all() and kept.postcode.str.fullmatch(postcode).all()
    assert [f for f, _ in street_forms("Kneza Miloša", "RS")] == ["Kneza Miloša", "Kn. Miloša", "ul. Kneza Miloša"]


def test_address_only_noise_is_what_the_truth_says():
    prog = generate(customers=4000, seed=12, locale="de_DE", profile_mix="address_only")
    nz, p = prog.config.noise, joined(prog)
    n = len(p)
    for flag, rate in (("street_typo", nz.street_typo), ("address_case", nz.address_case),
                       ("own_phone", nz.own_phone)):
        assert abs(p[flag].mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n), (flag, p[flag].mean())
    home = p[~p.moved & (p.address != "")]
    clean = home[~home.street_typo & ~home.address_case & (home.address_script == "native") & ~home.address_abbreviated]
    assert (clean.address == clean.address_true).all() and (clean.city == clean.city_true).all()
    assert len(clean) > 0.4 * len(home)
    cased = home[home.address_case]
    assert (cased.address.str.isupper() | cased.address.str.islower()).all()
    ascii_ = home[home.address_script == "ascii"]
    assert ascii_.address.map(str.isascii).all() and ascii_.city.map(str.isascii).all()
    assert len(ascii_) > 0.1 * len(home) and (home.address_script[~home.address.map(str.isascii)] != "ascii").all()
    assert home.address.str.contains("ue|oe|ae", regex=True)[ascii_.index].any()  # Müller → Mueller as Germans write it
    typo = home[home.street_typo & ~home.address_case & (home.address_script == "native")]
    forms = {f for row in _places("de_DE", 12).forms for f in row if f}
    assert not typo.address.str.replace(r" \d+$", "", regex=True).isin(forms).all()  # slips, not other forms
    code = p[(p.postcode != "") & ~p.moved]
    assert (code.postcode != code.postcode_true).eq(code.postcode_noise == "typo").all()
    assert abs((code.postcode_noise == "typo").mean() - nz.postcode_typo) < 0.015
    born = p[p.birth_date != ""]
    swapped = born[born.birth_date_noise == "day_month_swapped"]
    assert len(swapped) > 20 and (swapped.birth_date.str[8:] == swapped.birth_date_true.str[5:7]).all()
    assert (swapped.birth_date.str[5:7] == swapped.birth_date_true.str[8:]).all()
    off = born[born.birth_date_noise == "digit_off"]
    assert len(off) > 20 and (off.birth_date != off.birth_date_true).all()
    assert (born.birth_date == born.birth_date_true).eq(born.birth_date_noise == "").all()
    assert pd.to_datetime(born.birth_date, format="%Y-%m-%d").notna().all()  # still dates
    # the truth's person of every profile: the same gender, and the name where no noise touched it
    assert (p.gender == p.gender_true).all()
    plain = p[~p.typo & ~p.nickname & ~p.swapped & ~p.surname_changed & (p.script == "native")]
    assert (plain.first_name == plain.first_name_true).all() and (plain.last_name == plain.last_name_true).all()


def test_harder_profiles_leave_people_and_orders_as_they_were(au):
    default, hard = au["default"], au["address_only"]
    assert default.tables["order_lines"].equals(hard.tables["order_lines"])
    assert default.tables["offers"].equals(hard.tables["offers"])
    assert default.truth["profiles"][["source_system", "source_customer_id", "person_id"]].equals(
        hard.truth["profiles"][["source_system", "source_customer_id", "person_id"]])
    same = default.truth["people"].drop(columns=["email", "phone"])
    assert same.equals(hard.truth["people"].drop(columns=["email", "phone"]))
    # nobody's e-mail is known in address_only, so no newsletter goes out
    events = hard.table("interactions").event_type.astype(str)
    assert not events.str.startswith("email").any() and default.table("interactions").event_type.astype(str).eq("email_sent").any()


def test_config_json_records_the_options_only_when_they_are_not_the_default(tmp_path):
    write_programme(generate(customers=100, seed=2, locale="pl_PL", profile_mix="address_only"), tmp_path / "hard",
                    ("parquet",))
    write_programme(generate(customers=100, seed=2), tmp_path / "plain", ("parquet",))
    hard = json.loads((tmp_path / "hard" / "truth" / "config.json").read_text())
    plain = json.loads((tmp_path / "plain" / "truth" / "config.json").read_text())
    assert (hard["profile_mix"], hard["locale"], hard["locales"]) == ("address_only", "pl_PL", [["pl", 1.0]])
    assert "profile_mix" not in plain and "locale" not in plain and "own_phone" not in plain["noise"]
    assert list(plain["noise"]) == list(hard["noise"]) == ["duplicate_in_source", "typo", "nickname", "swap_names",
                                                          "email_variant", "missing", "moved", "surname_change"]
    assert SynthConfig(locale="de_DE", locales=(("de", 0.8), ("pl", 0.2))).people_locales == (("de", 0.8), ("pl", 0.2))


def test_cli_options_give_byte_identical_files_and_refuse_unknown_values(tmp_path):
    import hashlib, os
    digests = lambda folder: {p.relative_to(folder): hashlib.sha256(p.read_bytes()).digest() for p in folder.rglob("*.csv")}
    for out, hashing in (("o", "1"), ("p", "2")):  # another process, another string hashing: the same files
        done = subprocess.run([CLI, "synth", "--customers", "80", "--out", str(tmp_path / out), "--format", "csv",
                               "--profile-mix", "address_only", "--locale", "en_US"], capture_output=True, text=True,
                              env=os.environ | {"PYTHONHASHSEED": hashing})
        assert done.returncode == 0, done.stderr
    assert len(digests(tmp_path / "o")) == 8 and digests(tmp_path / "o") == digests(tmp_path / "p")
    profiles = pd.read_csv(tmp_path / "o" / "profiles.csv", dtype=str, keep_default_na=False)
    assert set(profiles.country) == {"US"} and (profiles.email == "").all()
    bad = subprocess.run([CLI, "synth", "--out", str(tmp_path / "x"), "--locale", "fr_FR"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'fr_FR'" in bad.stderr
    helptext = subprocess.run([CLI, "synth", "--help"], capture_output=True, text=True).stdout
    assert "{" + ",".join(("default",) + LOCALES) + "}" in helptext and "{" + ",".join(PROFILE_MIXES) + "}" in helptext
    with pytest.raises(LoyaltyLabError, match=r"profile_mix = 'phones' \(choose default, address_only\); "
                                              r"locale = 'fr_FR' \(choose default, en_AU, en_US, de_DE, pl_PL, sr_RS\)"):
        SynthConfig(profile_mix="phones", locale="fr_FR")
