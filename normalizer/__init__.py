"""Pure normalisation of what citizens write into a complaint, whatever the channel.

Every channel (web form, SMS, e-mail, Twitter/X, Telegram, ...) delivers the
same facts spelled in many ways.  This package turns each kind of fact into
one canonical, comparable form:

* :mod:`normalizer.nik` -- the 16-digit NIK: validation against the official
  region codes, decoded birth date and sex, and NIKs found in free text;
* :mod:`normalizer.phone` -- phone numbers to E.164, found in free text, masked;
* :mod:`normalizer.identity` -- e-mail addresses, Twitter/X and Telegram
  usernames and user ids;
* :mod:`normalizer.text` -- normalised Indonesian text (SMS abbreviations,
  slang, elongated words) and a similarity score for spotting the same
  complaint sent twice.

All functions are pure: they read nothing but the data files shipped in
``normalizer/data`` (loaded once, on first use) and keep no other state.
"""

from normalizer.identity import (
    email_mailbox,
    normalize_email,
    normalize_telegram_user_id,
    normalize_telegram_username,
    normalize_twitter_handle,
    normalize_twitter_user_id,
)
from normalizer.nik import (
    InvalidNik,
    NikError,
    NikRegion,
    NikResult,
    Sex,
    ValidNik,
    find_niks,
    parse_nik,
)
from normalizer.phone import find_phones, mask_phone, normalize_phone
from normalizer.text import (
    char_shingles,
    comparison_tokens,
    minhash,
    minhash_bands,
    minhash_similarity,
    normalize_text,
    similarity,
    token_similarity,
    word_set,
)

__all__ = [
    "InvalidNik",
    "NikError",
    "NikRegion",
    "NikResult",
    "Sex",
    "ValidNik",
    "char_shingles",
    "comparison_tokens",
    "email_mailbox",
    "find_niks",
    "find_phones",
    "mask_phone",
    "minhash",
    "minhash_bands",
    "minhash_similarity",
    "normalize_email",
    "normalize_phone",
    "normalize_telegram_user_id",
    "normalize_telegram_username",
    "normalize_text",
    "normalize_twitter_handle",
    "normalize_twitter_user_id",
    "parse_nik",
    "similarity",
    "token_similarity",
    "word_set",
]
