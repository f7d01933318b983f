"""The passwords everyone tries first: refused as anyone's new password.

`data/common-passwords-10k.txt.gz` holds the 10,000 most common passwords, most common first, taken
unchanged from the list Django ships (BSD-3-Clause; source, version and licence in
`data/common-passwords-10k.LICENSE.txt`). A password is compared as Django compares it: lower-cased and
trimmed, so `Password` and ` password ` are the same guess.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords-10k.txt.gz"


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as listing:
        return frozenset(line.strip() for line in listing if line.strip())


def is_common(password: str) -> bool:
    return password.lower().strip() in common_passwords()
