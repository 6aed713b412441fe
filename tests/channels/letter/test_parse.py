"""The reviewed letter's validation and the pure parser ``letter.review`` (no IO)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from channels.letter.parse import (
    Scan,
    encode_review,
    parse_review,
    source_metadata,
    validate,
)
from gateway.domain import Channel, Kind, RawInbound
from gateway.errors import ParseError

NIK = "3209014101900001"
TODAY = date(2026, 11, 26)
SCAN = Scan("ab" * 32, "application/pdf", 2048, "surat-warga.pdf")
VALUES = {
    "sender_name": "Siti Aminah",
    "nik": "3209 0141 0190 0001",
    "address": "Jl. Siliwangi No. 5, Sumber",
    "phone": "0812-3456-7890",
    "email": "",
    "letter_date": "2026-11-20",
    "letter_place": "Sumber",
    "addressee": "Bupati Cirebon",
    "subject": "Jalan rusak di depan pasar",
    "body": "Dengan hormat, jalan di depan pasar Sumber berlubang besar sejak dua bulan.",
    "kind": "pengaduan",
}


def raw_of(values: dict[str, str], scans: list[Scan] = [SCAN]) -> RawInbound:
    return RawInbound(
        channel=Channel.LETTER,
        body=encode_review("d-1", values, scans, "siti", 2),
        received_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
        provider_message_id="letter-draft:d-1",
        content_type="application/json",
    )


def test_valid_letter_is_normalised() -> None:
    letter, errors = validate(VALUES, TODAY)
    assert errors == {} and letter is not None
    assert letter.nik == NIK and letter.phone == "+6281234567890"
    assert letter.letter_date == date(2026, 11, 20) and letter.kind is Kind.PENGADUAN
    assert source_metadata(letter) == {
        "letter_date": "2026-11-20",
        "letter_place": "Sumber",
        "sender_address": "Jl. Siliwangi No. 5, Sumber",
    }


@pytest.mark.parametrize(
    ("field", "value", "expect"),
    [
        ("body", "pendek", "paling sedikit 10"),
        ("nik", "3209014101900000", "0000"),
        ("phone", "12", "Nomor telepon tidak valid"),
        ("email", "bukan-email", "e-mail tidak valid"),
        ("letter_date", "20-11-2026", "TTTT-BB-HH"),
        ("letter_date", "2026-12-30", "setelah surat diterima"),
        ("kind", "keluhan", "klasifikasi"),
        ("sender_name", "", "Nama pengirim wajib"),
        ("subject", "x" * 301, "Paling banyak 300"),
    ],
)
def test_each_wrong_field_is_named_in_both_languages(field: str, value: str, expect: str) -> None:
    letter, errors = validate({**VALUES, field: value}, TODAY)
    assert letter is None and set(errors) == {field}
    indonesian, english = errors[field]
    assert expect in indonesian and english and english != indonesian


def test_unsigned_letter_may_be_anonymous() -> None:
    letter, errors = validate({**VALUES, "sender_name": "", "anonymous": "1"}, TODAY)
    assert letter is not None and letter.anonymous and letter.sender_name is None


def test_a_nik_checked_against_the_ktp_is_said_in_the_source() -> None:
    letter, errors = validate({**VALUES, "nik_checked": "1"}, TODAY)
    assert errors == {} and letter is not None and letter.nik_checked
    assert source_metadata(letter)["nik_checked"] == "ktp"
    unchecked, _ = validate(VALUES, TODAY)
    assert unchecked is not None and "nik_checked" not in source_metadata(unchecked)
    # Ticked with no NIK typed: the NIK field says what to do, in both languages.
    letter, errors = validate({**VALUES, "nik": "", "nik_checked": "1"}, TODAY)
    assert letter is None and set(errors) == {"nik"}
    indonesian, english = errors["nik"]
    assert "KTP" in indonesian and "KTP" in english and indonesian != english


def test_parser_builds_the_canonical_complaint() -> None:
    draft = parse_review(raw_of(VALUES))
    assert draft.title == "Jalan rusak di depan pasar"
    assert draft.body.startswith("Dengan hormat")
    assert draft.agency == "Bupati Cirebon"
    assert draft.reporter.nik == NIK and draft.reporter.name == "Siti Aminah"
    assert draft.reporter.phone == "+6281234567890" and draft.reporter.email is None
    [att] = draft.attachments
    assert (att.sha256, att.media_type, att.size, att.filename) == (
        SCAN.sha256, "application/pdf", 2048, "surat-warga.pdf",
    )


def test_parser_refuses_what_validation_refuses() -> None:
    with pytest.raises(ParseError) as caught:
        parse_review(raw_of({**VALUES, "body": ""}))
    assert "body" in caught.value.reason and caught.value.stage == "parse"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"values": {"body": 1}, "scans": []}).encode(),
        json.dumps({"values": VALUES, "scans": [{"sha256": "zz"}]}).encode(),
    ],
)
def test_broken_stored_documents_are_parse_errors(body: bytes) -> None:
    raw = RawInbound(Channel.LETTER, body, datetime(2026, 11, 26, tzinfo=UTC))
    with pytest.raises(ParseError):
        parse_review(raw)


def test_stored_document_holds_exactly_the_reviewed_fields() -> None:
    document = json.loads(encode_review("d-9", {**VALUES, "junk": "x"}, [SCAN], "budi", 3))
    assert document["draft_id"] == "d-9" and document["entered_by"] == "budi"
    assert document["pages"] == 3 and "junk" not in document["values"]
    assert document["scans"] == [SCAN.as_json()]
