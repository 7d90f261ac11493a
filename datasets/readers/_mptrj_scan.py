"""Compiled scanner for MPTrj JSON: regular materials go from the file's bytes straight into flat buffers.

Why hand-written: a generic JSON decoder (orjson, msgspec, ijson) makes a Python object for every number,
list and dict of the file (about 130 numbers and 60 containers per 12-atom frame), and turning those into
flat buffers costs as much again; together they are the whole cost of reading MPTrj. This scanner walks
the bytes once, in numba, and writes atomic numbers, positions, cells, energies, forces and stresses into
numpy buffers, with numbers converted exactly as Python would (:mod:`._json_numbers`). It only reads what
it can read exactly as the reference reader (orjson + :func:`.mptrj._add_material` / :func:`.mptrj._row`)
does, and hands everything else back:

* a material is *regular* when every frame is an object with a ``structure`` (``lattice.matrix`` 3x3
  numbers, optional ``pbc`` of 3 booleans, ``sites`` whose every site has exactly one species with a
  string ``element`` and ``occu`` equal to 1, and ``xyz`` of 3 numbers), a numeric
  ``uncorrected_total_energy`` (or, when that is null or missing, ``corrected_total_energy``), ``force``
  null, missing or one row of 3 numbers per site, ``stress`` null, missing or 3x3 numbers; no known key
  repeats, no frame id repeats, and no string anywhere in the material has an escape or a non-ASCII
  byte, no number is NaN or infinite;
* any other material that is valid JSON is *irregular*: the scanner finds where it ends and the caller
  reads it with the reference reader;
* invalid JSON stops the scan at the start of the material that holds it (status :data:`ERROR`); the
  caller reads the rest of the stream with the reference reader, which salvages and counts.

Every other key (``abc``, ``label``, ``properties``, ``magmom``, ``mp_id``...) is skipped but checked to
be valid JSON. Shapes of the output buffers are stated in :func:`scan`.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from ase.data import atomic_numbers

from ._json_numbers import _U0, POW5_HI, POW5_LO, decimal_to_double

__all__ = ["Scanner", "NEED_MORE", "STOPPED", "ERROR", "FULL"]

# Statuses of a scan (what stopped it); `pos` says where.
NEED_MORE = 0  # the data ended: pos is where the next material (or the rest of the stream) starts
STOPPED = 1  # after a material, something other than `,` (e.g. the closing `}` of the file) is at pos
ERROR = 2  # invalid JSON in the material that starts at pos
FULL = 3  # output buffers full: rescan from pos

# Negative positions returned by the helpers.
_INCOMPLETE = -1  # the data ends inside this value
_SYNTAX = -2  # not JSON
_IRREGULAR = -3  # JSON, but not the regular form
_FULLBUF = -4  # no room left in an output buffer

_MAX_DEPTH = 1024  # nesting that the validating skip follows; orjson's limit too

# Codes of the output arrays, for numbers left to Python's float (slow numbers).
_POS, _FRC, _CELL, _STRESS, _ENERGY = 0, 1, 2, 3, 4


def _key(name: str) -> np.ndarray:
    return np.frombuffer(name.encode(), np.uint8).copy()


_K_STRUCTURE = _key("structure")
_K_UNCORRECTED = _key("uncorrected_total_energy")
_K_CORRECTED = _key("corrected_total_energy")
_K_FORCE = _key("force")
_K_STRESS = _key("stress")
_K_LATTICE = _key("lattice")
_K_MATRIX = _key("matrix")
_K_PBC = _key("pbc")
_K_SITES = _key("sites")
_K_SPECIES = _key("species")
_K_XYZ = _key("xyz")
_K_ELEMENT = _key("element")
_K_OCCU = _key("occu")
_K_TRUE = _key("true")
_K_FALSE = _key("false")
_K_NULL = _key("null")
_K_NAN = _key("NaN")
_K_INFINITY = _key("Infinity")


def _element_table() -> np.ndarray:
    """Z of a 1-2 letter ASCII symbol at ``128 * first + second`` (second 0 for one letter); 0 if unknown,
    as ``atomic_numbers.get(symbol, 0)``."""
    table = np.zeros(128 * 128, np.int64)
    for symbol, z in atomic_numbers.items():
        if 1 <= len(symbol) <= 2 and symbol.isascii():
            table[128 * ord(symbol[0]) + (ord(symbol[1]) if len(symbol) == 2 else 0)] = z
    return table


_ELEMENTS = _element_table()


@njit(cache=True, inline="always")
def _ws(buf, i, n):
    while i < n:
        c = buf[i]
        if c == 32 or c == 10 or c == 13 or c == 9:
            i += 1
        else:
            return i
    return i


@njit(cache=True, inline="always")
def _is(buf, s, e, word):
    """buf[s:e] equals the byte array ``word``."""
    if e - s != word.shape[0]:
        return False
    for k in range(word.shape[0]):
        if buf[s + k] != word[k]:
            return False
    return True


@njit(cache=True, inline="always")
def _word(buf, i, n, word):
    """Position after ``word`` at ``i``, or a status."""
    m = word.shape[0]
    for k in range(m):
        if i + k >= n:
            return _INCOMPLETE
        if buf[i + k] != word[k]:
            return _SYNTAX
    return i + m


@njit(cache=True)
def _string(buf, i, n):
    """``buf[i]`` is ``"``: (position after the closing quote or a status, special) where special means an
    escape or a non-ASCII byte was seen (the string is still skipped correctly)."""
    j = i + 1
    special = False
    while j < n:
        c = buf[j]
        if c == 34:
            return j + 1, special
        if c == 92:
            special = True
            j += 2
            continue
        if c >= 128:
            special = True
        elif c < 32:
            return _SYNTAX, special
        j += 1
    return _INCOMPLETE, special


@njit(cache=True)
def _number_end(buf, i, n):
    """Position after the JSON number at ``i`` (grammar checked), or a status."""
    j = i
    if j < n and buf[j] == 45:
        j += 1
    if j >= n:
        return _INCOMPLETE
    c = buf[j]
    if c == 48:
        j += 1
    elif 49 <= c <= 57:
        j = _skip_digits(buf, j, n)
    else:
        return _SYNTAX
    if j < n and buf[j] == 46:
        j += 1
        if j >= n:
            return _INCOMPLETE
        if not 48 <= buf[j] <= 57:
            return _SYNTAX
        j = _skip_digits(buf, j, n)
    if j < n and (buf[j] == 101 or buf[j] == 69):
        j += 1
        if j < n and (buf[j] == 43 or buf[j] == 45):
            j += 1
        if j >= n:
            return _INCOMPLETE
        if not 48 <= buf[j] <= 57:
            return _SYNTAX
        while j < n and 48 <= buf[j] <= 57:
            j += 1
    if j >= n:
        return _INCOMPLETE
    return j

_U10 = np.uint64(10)
_U8 = np.uint64(8)
_U48 = np.uint64(48)
_E8 = np.uint64(100000000)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_THREES = np.uint64(0x3333333333333333)


@njit(cache=True, inline="always")
def _eight(buf, j):
    """``buf[j:j + 8]`` as a little-endian uint64."""
    v = np.uint64(buf[j + 7])
    for k in range(6, -1, -1):
        v = (v << _U8) | np.uint64(buf[j + k])
    return v


@njit(cache=True, inline="always")
def _eight_digits(buf, j, n):
    """(True, value) when ``buf[j:j + 8]`` are 8 ASCII digits (checked and converted together, as
    fast_float does), else (False, 0)."""
    if j + 8 > n:
        return False, _U0
    v = _eight(buf, j)
    if ((v & _HIGH_NIBBLES) | (((v + _SIXES) & _HIGH_NIBBLES) >> np.uint64(4))) != _THREES:
        return False, _U0
    v = v - np.uint64(0x3030303030303030)
    v = (v * np.uint64(10) + (v >> _U8)) & np.uint64(0x00FF00FF00FF00FF)
    v = (v * np.uint64(100) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v * np.uint64(10000) + (v >> np.uint64(32))) & np.uint64(0x00000000FFFFFFFF)
    return True, v



@njit(cache=True, inline="always")
def _digits(buf, j, n, w, count):
    """Consume the digits at ``j``: (end, mantissa, digits counted); digits past the 19th are counted but
    not added to the mantissa."""
    while count + 8 <= 19:
        ok, v = _eight_digits(buf, j, n)
        if not ok:
            break
        w = w * _E8 + v
        j += 8
        count += 8
    while j < n:
        d = np.uint64(buf[j]) - _U48
        if d >= _U10:
            break
        if count < 19:
            w = w * _U10 + d
        count += 1
        j += 1
    return j, w, count


@njit(cache=True, inline="always")
def _skip_digits(buf, j, n):
    """Position after the digits at ``j`` (8 at a time where it can)."""
    while True:
        if j + 8 > n:
            break
        v = _eight(buf, j)
        if ((v & _HIGH_NIBBLES) | (((v + _SIXES) & _HIGH_NIBBLES) >> np.uint64(4))) != _THREES:
            break
        j += 8
    while j < n and 48 <= buf[j] <= 57:
        j += 1
    return j


@njit(cache=True, inline="always")
def _number(buf, i, n):
    """The JSON number at ``i``: (end or status, value, exact). ``exact`` False: the value must be taken
    from ``float(buf[i:end])`` (more than 19 significant digits, subnormal or overflowing)."""
    j = i
    negative = False
    if j < n and buf[j] == 45:
        negative = True
        j += 1
    if j >= n:
        return _INCOMPLETE, 0.0, False
    w = _U0
    digits = 0  # significant digits (leading zeros excluded)
    q = 0
    c = buf[j]
    if c == 48:
        j += 1
    elif 49 <= c <= 57:
        j, w, digits = _digits(buf, j, n, w, 0)
        if digits > 19:
            q = digits - 19
    else:
        return _SYNTAX, 0.0, False
    if j < n and buf[j] == 46:
        j += 1
        if j >= n:
            return _INCOMPLETE, 0.0, False
        if not 48 <= buf[j] <= 57:
            return _SYNTAX, 0.0, False
        first = j
        if digits == 0:
            while j < n and buf[j] == 48:
                j += 1
        j, w, digits = _digits(buf, j, n, w, digits)
        q -= j - first  # exact whenever digits <= 19; otherwise the number is slow anyway
    if j < n and (buf[j] == 101 or buf[j] == 69):
        j += 1
        sign = 1
        if j < n and (buf[j] == 43 or buf[j] == 45):
            if buf[j] == 45:
                sign = -1
            j += 1
        if j >= n:
            return _INCOMPLETE, 0.0, False
        if not 48 <= buf[j] <= 57:
            return _SYNTAX, 0.0, False
        e = 0
        while j < n and 48 <= buf[j] <= 57:
            if e < 100000:
                e = e * 10 + (buf[j] - 48)
            j += 1
        q += sign * e
    if j >= n:
        return _INCOMPLETE, 0.0, False
    if digits > 19:
        return j, 0.0, False
    ok, value = decimal_to_double(w, q, negative, POW5_HI, POW5_LO)
    return j, value, ok


@njit(cache=True, inline="always")
def _skip_key(buf, i, n):
    """A member's key and colon at ``i`` (any string): (position after the colon or a status, special)."""
    if i >= n:
        return _INCOMPLETE, False
    if buf[i] != 34:
        return _SYNTAX, False
    i, special = _string(buf, i, n)
    if i < 0:
        return i, special
    i = _ws(buf, i, n)
    if i >= n:
        return _INCOMPLETE, special
    if buf[i] != 58:
        return _SYNTAX, special
    return i + 1, special


@njit(cache=True)
def skip_value(buf, i, n, stack):
    """Skip the JSON value at ``i``, checking its grammar: (position after it or a status, special).
    ``special``: an escape or non-ASCII byte in a string, or a NaN / Infinity token (accepted here, as
    Python's json accepts them; the reference reader decides)."""
    depth = 0
    special = False
    while True:
        # a value starts at i
        i = _ws(buf, i, n)
        if i >= n:
            return _INCOMPLETE, special
        c = buf[i]
        if c == 123 or c == 91:
            close = 125 if c == 123 else 93
            i = _ws(buf, i + 1, n)
            if i >= n:
                return _INCOMPLETE, special
            if buf[i] == close:
                i += 1
            else:
                if depth >= _MAX_DEPTH:
                    return _SYNTAX, special
                stack[depth] = c
                depth += 1
                if c == 123:  # a key, a colon, then the value
                    i, sp = _skip_key(buf, i, n)
                    special |= sp
                    if i < 0:
                        return i, special
                continue
        elif c == 34:
            i, sp = _string(buf, i, n)
            special |= sp
            if i < 0:
                return i, special
        elif c == 45 or 48 <= c <= 57:
            if c == 45 and i + 1 < n and buf[i + 1] == 73:
                i = _word(buf, i + 1, n, _K_INFINITY)
                special = True
            else:
                i = _number_end(buf, i, n)
            if i < 0:
                return i, special
        else:
            if c == 116:
                i = _word(buf, i, n, _K_TRUE)
            elif c == 102:
                i = _word(buf, i, n, _K_FALSE)
            elif c == 110:
                i = _word(buf, i, n, _K_NULL)
            elif c == 78:
                i = _word(buf, i, n, _K_NAN)
                special = True
            elif c == 73:
                i = _word(buf, i, n, _K_INFINITY)
                special = True
            else:
                return _SYNTAX, special
            if i < 0:
                return i, special
        # after a value: close containers, or a comma and the next value
        while True:
            if depth == 0:
                return i, special
            i = _ws(buf, i, n)
            if i >= n:
                return _INCOMPLETE, special
            c = buf[i]
            top = stack[depth - 1]
            if c == 44:
                i = _ws(buf, i + 1, n)
                if top == 123:
                    i, sp = _skip_key(buf, i, n)
                    special |= sp
                    if i < 0:
                        return i, special
                break
            if (c == 125 and top == 123) or (c == 93 and top == 91):
                depth -= 1
                i += 1
                continue
            return _SYNTAX, special


@njit(cache=True)
def _skip_regular(buf, i, n, stack):
    """Skip a value inside a regular material: its end, or _IRREGULAR when it holds something special."""
    end, special = skip_value(buf, i, n, stack)
    if end >= 0 and special:
        return _IRREGULAR
    return end


@njit(cache=True, inline="always")
def _key_at(buf, i, n):
    """A key at ``i`` (``"..."`` then ``:``): (key start, key end, position of the value) or a status in the
    last slot. Keys with escapes or non-ASCII bytes make the material irregular."""
    if i >= n:
        return 0, 0, _INCOMPLETE
    if buf[i] != 34:
        return 0, 0, _IRREGULAR
    e, special = _string(buf, i, n)
    if e < 0:
        return 0, 0, e
    if special:
        return 0, 0, _IRREGULAR
    j = _ws(buf, e, n)
    if j >= n:
        return 0, 0, _INCOMPLETE
    if buf[j] != 58:
        return 0, 0, _IRREGULAR
    return i + 1, e - 1, _ws(buf, j + 1, n)


@njit(cache=True, inline="always")
def _open_object(buf, i, n):
    """Position of the first key of the object at ``i``, or a status (an empty object is irregular where
    the scanner expects members)."""
    if i >= n:
        return _INCOMPLETE
    if buf[i] != 123:
        return _IRREGULAR
    i = _ws(buf, i + 1, n)
    if i < n and buf[i] == 125:
        return _IRREGULAR
    return i


@njit(cache=True, inline="always")
def _next_member(buf, i, n, close):
    """After a member: (position of the next member or after the container, more members follow), or a
    status in the first slot."""
    i = _ws(buf, i, n)
    if i >= n:
        return _INCOMPLETE, False
    if buf[i] == 44:
        return _ws(buf, i + 1, n), True
    if buf[i] == close:
        return i + 1, False
    return _IRREGULAR, False


@njit(cache=True)
def _numbers(buf, i, n, count, out, k, code, slow, cnt):
    """``[x, y, ...]`` of exactly ``count`` numbers at ``i`` into ``out[k:k + count]``; numbers left to
    Python are noted in ``slow``. Returns the position after ``]`` or a status."""
    if i >= n:
        return _INCOMPLETE
    if buf[i] != 91:
        return _IRREGULAR
    i = _ws(buf, i + 1, n)
    for t in range(count):
        if i >= n:
            return _INCOMPLETE
        c = buf[i]
        if not (c == 45 or 48 <= c <= 57):
            return _IRREGULAR
        e, value, exact = _number(buf, i, n)
        if e < 0:
            return e
        out[k + t] = value
        if not exact:
            s = cnt[2]
            if s >= slow.shape[0]:
                return _FULLBUF
            slow[s, 0] = code
            slow[s, 1] = k + t
            slow[s, 2] = i
            slow[s, 3] = e
            cnt[2] = s + 1
        i = _ws(buf, e, n)
        if i >= n:
            return _INCOMPLETE
        if t < count - 1:
            if buf[i] != 44:
                return _IRREGULAR
            i = _ws(buf, i + 1, n)
    if buf[i] != 93:
        return _IRREGULAR
    return i + 1


@njit(cache=True)
def _rows3(buf, i, n, rows, out, k, code, slow, cnt):
    """``[[x, y, z], ...]`` at ``i`` into ``out[k:]``: exactly ``rows`` rows when ``rows`` >= 0, else as many
    as there are (room permitting). Returns (position after ``]`` or a status, rows read)."""
    if i >= n:
        return _INCOMPLETE, 0
    if buf[i] != 91:
        return _IRREGULAR, 0
    i = _ws(buf, i + 1, n)
    if i >= n:
        return _INCOMPLETE, 0
    r = 0
    if buf[i] == 93:
        return (i + 1, 0) if rows <= 0 else (_IRREGULAR, 0)
    while True:
        if rows >= 0 and r >= rows:
            return _IRREGULAR, r
        if k + 3 * (r + 1) > out.shape[0]:
            return _FULLBUF, r
        i = _numbers(buf, i, n, 3, out, k + 3 * r, code, slow, cnt)
        if i < 0:
            return i, r
        r += 1
        i, more = _next_member(buf, i, n, 93)
        if i < 0:
            return i, r
        if not more:
            break
    if rows >= 0 and r != rows:
        return _IRREGULAR, r
    return i, r


@njit(cache=True)
def _site(buf, i, n, a, numbers, positions, slow, cnt, stack):
    """One site object at ``i`` (atom ``a``): its element into ``numbers[a]``, ``xyz`` into
    ``positions[3a:3a + 3]``. Returns the position after it or a status."""
    i = _open_object(buf, i, n)
    if i < 0:
        return i
    seen_species = False
    seen_xyz = False
    while True:
        ks, ke, i = _key_at(buf, i, n)
        if i < 0:
            return i
        if _is(buf, ks, ke, _K_SPECIES):
            if seen_species:
                return _IRREGULAR
            seen_species = True
            # exactly one species: [{"element": "X", "occu": 1, ...}]
            if i >= n:
                return _INCOMPLETE
            if buf[i] != 91:
                return _IRREGULAR
            i = _ws(buf, i + 1, n)
            if i >= n:
                return _INCOMPLETE
            if buf[i] != 123:
                return _IRREGULAR
            i = _ws(buf, i + 1, n)
            z = -1
            occupied = False
            while True:
                ks, ke, i = _key_at(buf, i, n)
                if i < 0:
                    return i
                if _is(buf, ks, ke, _K_ELEMENT):
                    if z >= 0 or i >= n:
                        return _INCOMPLETE if i >= n else _IRREGULAR
                    if buf[i] != 34:
                        return _IRREGULAR
                    e, special = _string(buf, i, n)
                    if e < 0:
                        return e
                    if special:
                        return _IRREGULAR
                    length = e - i - 2
                    z = 0
                    if length == 1:
                        z = _ELEMENTS[128 * buf[i + 1]]
                    elif length == 2:
                        z = _ELEMENTS[128 * buf[i + 1] + buf[i + 2]]
                    i = e
                elif _is(buf, ks, ke, _K_OCCU):
                    if occupied or i >= n:
                        return _INCOMPLETE if i >= n else _IRREGULAR
                    c = buf[i]
                    if not (c == 45 or 48 <= c <= 57):
                        return _IRREGULAR
                    e, value, exact = _number(buf, i, n)
                    if e < 0:
                        return e
                    if not exact or value != 1.0:
                        return _IRREGULAR
                    occupied = True
                    i = e
                else:
                    i = _skip_regular(buf, i, n, stack)
                    if i < 0:
                        return i
                i, more = _next_member(buf, i, n, 125)
                if i < 0:
                    return i
                if not more:
                    break
            if z < 0 or not occupied:
                return _IRREGULAR
            numbers[a] = z
            i = _ws(buf, i, n)
            if i >= n:
                return _INCOMPLETE
            if buf[i] != 93:
                return _IRREGULAR
            i += 1
        elif _is(buf, ks, ke, _K_XYZ):
            if seen_xyz:
                return _IRREGULAR
            seen_xyz = True
            i = _numbers(buf, i, n, 3, positions, 3 * a, _POS, slow, cnt)
            if i < 0:
                return i
        else:
            i = _skip_regular(buf, i, n, stack)
            if i < 0:
                return i
        i, more = _next_member(buf, i, n, 125)
        if i < 0:
            return i
        if not more:
            break
    if not (seen_species and seen_xyz):
        return _IRREGULAR
    return i


@njit(cache=True)
def _lattice(buf, i, n, f, cell, pbc, slow, cnt, stack):
    """The lattice object at ``i`` of frame ``f``: ``matrix`` into ``cell[9f:9f + 9]``, ``pbc`` into
    ``pbc[3f:3f + 3]`` (1, 1, 1 when missing). Returns the position after it or a status."""
    i = _open_object(buf, i, n)
    if i < 0:
        return i
    seen_matrix = False
    seen_pbc = False
    while True:
        ks, ke, i = _key_at(buf, i, n)
        if i < 0:
            return i
        if _is(buf, ks, ke, _K_MATRIX):
            if seen_matrix:
                return _IRREGULAR
            seen_matrix = True
            i, rows = _rows3(buf, i, n, 3, cell, 9 * f, _CELL, slow, cnt)
            if i < 0:
                return i
        elif _is(buf, ks, ke, _K_PBC):
            if seen_pbc:
                return _IRREGULAR
            seen_pbc = True
            if i >= n:
                return _INCOMPLETE
            if buf[i] != 91:
                return _IRREGULAR
            i = _ws(buf, i + 1, n)
            for t in range(3):
                if i >= n:
                    return _INCOMPLETE
                if buf[i] == 116:
                    i = _word(buf, i, n, _K_TRUE)
                    pbc[3 * f + t] = 1
                elif buf[i] == 102:
                    i = _word(buf, i, n, _K_FALSE)
                    pbc[3 * f + t] = 0
                else:
                    return _IRREGULAR
                if i < 0:
                    return _INCOMPLETE if i == _INCOMPLETE else _IRREGULAR
                i = _ws(buf, i, n)
                if i >= n:
                    return _INCOMPLETE
                if t < 2:
                    if buf[i] != 44:
                        return _IRREGULAR
                    i = _ws(buf, i + 1, n)
            if buf[i] != 93:
                return _IRREGULAR
            i += 1
        else:
            i = _skip_regular(buf, i, n, stack)
            if i < 0:
                return i
        i, more = _next_member(buf, i, n, 125)
        if i < 0:
            return i
        if not more:
            break
    if not seen_matrix:
        return _IRREGULAR
    if not seen_pbc:
        pbc[3 * f] = 1
        pbc[3 * f + 1] = 1
        pbc[3 * f + 2] = 1
    return i


@njit(cache=True)
def _structure(buf, i, n, f, base, numbers, positions, cell, pbc, slow, cnt, stack):
    """The structure object at ``i`` of frame ``f`` whose atoms start at ``base``: (position after it or a
    status, number of sites)."""
    i = _open_object(buf, i, n)
    if i < 0:
        return i, 0
    seen_lattice = False
    nat = -1
    while True:
        ks, ke, i = _key_at(buf, i, n)
        if i < 0:
            return i, 0
        if i >= n:
            return _INCOMPLETE, 0
        if _is(buf, ks, ke, _K_LATTICE):
            if seen_lattice:
                return _IRREGULAR, 0
            seen_lattice = True
            i = _lattice(buf, i, n, f, cell, pbc, slow, cnt, stack)
            if i < 0:
                return i, 0
        elif _is(buf, ks, ke, _K_SITES):
            if nat >= 0:
                return _IRREGULAR, 0
            if buf[i] != 91:
                return _IRREGULAR, 0
            i = _ws(buf, i + 1, n)
            if i >= n:
                return _INCOMPLETE, 0
            nat = 0
            if buf[i] == 93:
                i += 1
            else:
                while True:
                    a = base + nat
                    if a >= numbers.shape[0]:
                        return _FULLBUF, 0
                    i = _site(buf, i, n, a, numbers, positions, slow, cnt, stack)
                    if i < 0:
                        return i, 0
                    nat += 1
                    i, more = _next_member(buf, i, n, 93)
                    if i < 0:
                        return i, 0
                    if not more:
                        break
        else:
            i = _skip_regular(buf, i, n, stack)
            if i < 0:
                return i, 0
        i, more = _next_member(buf, i, n, 125)
        if i < 0:
            return i, 0
        if not more:
            break
    if not seen_lattice or nat < 0:
        return _IRREGULAR, 0
    return i, nat


@njit(cache=True)
def _energy(buf, i, n):
    """An energy value at ``i``: (position after it or a status, is a number, value, exact)."""
    if i >= n:
        return _INCOMPLETE, False, 0.0, True
    c = buf[i]
    if c == 110:
        e = _word(buf, i, n, _K_NULL)
        return e, False, 0.0, True
    if not (c == 45 or 48 <= c <= 57):
        return _IRREGULAR, False, 0.0, True
    e, value, exact = _number(buf, i, n)
    return e, True, value, exact


@njit(cache=True)
def _frame(buf, i, n, f, base, numbers, positions, forces, cell, pbc, energy, flags, stress, slow, cnt, stack):
    """One frame object at ``i`` (frame ``f``, atoms from ``base``): (position after it or a status, sites)."""
    i = _open_object(buf, i, n)
    if i < 0:
        return i, 0
    nat = -1
    seen_uncorrected = seen_corrected = seen_force = seen_stress = False
    # the uncorrected (u_) and corrected (c_) energy: is a number, value, exact, token start and end
    u_present = c_present = False
    u_value = c_value = 0.0
    u_exact = c_exact = True
    u_start = u_end = c_start = c_end = 0
    force_rows = -1
    stress_rows = -1
    while True:
        ks, ke, i = _key_at(buf, i, n)
        if i < 0:
            return i, 0
        if i >= n:
            return _INCOMPLETE, 0
        if _is(buf, ks, ke, _K_STRUCTURE):
            if nat >= 0:
                return _IRREGULAR, 0
            i, nat = _structure(buf, i, n, f, base, numbers, positions, cell, pbc, slow, cnt, stack)
            if i < 0:
                return i, 0
        elif _is(buf, ks, ke, _K_UNCORRECTED) or _is(buf, ks, ke, _K_CORRECTED):
            which = 0 if ke - ks == _K_UNCORRECTED.shape[0] else 1
            if (seen_uncorrected if which == 0 else seen_corrected):
                return _IRREGULAR, 0
            if which == 0:
                seen_uncorrected = True
            else:
                seen_corrected = True
            e, is_number, value, is_exact = _energy(buf, i, n)
            if e < 0:
                return e, 0
            if which == 0:
                u_present, u_value, u_exact, u_start, u_end = is_number, value, is_exact, i, e
            else:
                c_present, c_value, c_exact, c_start, c_end = is_number, value, is_exact, i, e
            i = e
        elif _is(buf, ks, ke, _K_FORCE):
            if seen_force:
                return _IRREGULAR, 0
            seen_force = True
            if buf[i] == 110:
                i = _word(buf, i, n, _K_NULL)
                if i < 0:
                    return i, 0
            else:
                i, force_rows = _rows3(buf, i, n, -1, forces, 3 * base, _FRC, slow, cnt)
                if i < 0:
                    return i, 0
        elif _is(buf, ks, ke, _K_STRESS):
            if seen_stress:
                return _IRREGULAR, 0
            seen_stress = True
            if buf[i] == 110:
                i = _word(buf, i, n, _K_NULL)
                if i < 0:
                    return i, 0
            else:
                i, stress_rows = _rows3(buf, i, n, 3, stress, 9 * f, _STRESS, slow, cnt)
                if i < 0:
                    return i, 0
        else:
            i = _skip_regular(buf, i, n, stack)
            if i < 0:
                return i, 0
        i, more = _next_member(buf, i, n, 125)
        if i < 0:
            return i, 0
        if not more:
            break
    if nat < 0:
        return _IRREGULAR, 0
    if not u_present:
        if not c_present:
            return _IRREGULAR, 0  # no energy: the reference reader counts the frame as skipped
        u_value, u_exact, u_start, u_end = c_value, c_exact, c_start, c_end
    energy[f] = u_value
    if not u_exact:
        s = cnt[2]
        if s >= slow.shape[0]:
            return _FULLBUF, 0
        slow[s, 0] = _ENERGY
        slow[s, 1] = f
        slow[s, 2] = u_start
        slow[s, 3] = u_end
        cnt[2] = s + 1
    if force_rows >= 0:
        if force_rows != nat:
            return _IRREGULAR, 0
        flags[2 * f] = 1
    else:
        flags[2 * f] = 0
        if 3 * (base + nat) > forces.shape[0]:
            return _FULLBUF, 0
        forces[3 * base:3 * (base + nat)] = np.nan
    if stress_rows >= 0:
        flags[2 * f + 1] = 1
    else:
        flags[2 * f + 1] = 0
        stress[9 * f:9 * f + 9] = np.nan
    return i, nat


@njit(cache=True)
def _hash(buf, s, e):
    """FNV-1a hash of buf[s:e] (duplicate frame ids are found by equal hashes; a collision only sends the
    material to the reference reader)."""
    h = np.uint64(0xCBF29CE484222325)
    for k in range(s, e):
        h = (h ^ np.uint64(buf[k])) * np.uint64(0x100000001B3)
    return h


@njit(cache=True)
def _material(buf, i, n, numbers, positions, forces, cell, pbc, energy, flags, stress, frames, hashes, slow, cnt,
              stack):
    """The frames object of one material at ``i``: position after it, or a status."""
    if i >= n:
        return _INCOMPLETE
    if buf[i] != 123:
        return _IRREGULAR
    i = _ws(buf, i + 1, n)
    if i >= n:
        return _INCOMPLETE
    if buf[i] == 125:
        return i + 1
    first = cnt[0]
    while True:
        ks, ke, i = _key_at(buf, i, n)
        if i < 0:
            return i
        f = cnt[0]
        if f >= frames.shape[0]:
            return _FULLBUF
        base = cnt[1]
        i, nat = _frame(buf, i, n, f, base, numbers, positions, forces, cell, pbc, energy, flags, stress, slow, cnt,
                        stack)
        if i < 0:
            return i
        frames[f, 0] = ks
        frames[f, 1] = ke
        frames[f, 2] = nat
        hashes[f] = _hash(buf, ks, ke)
        cnt[0] = f + 1
        cnt[1] = base + nat
        i, more = _next_member(buf, i, n, 125)
        if i < 0:
            return i
        if not more:
            break
    if cnt[0] - first > 1:
        h = np.sort(hashes[first:cnt[0]])
        for t in range(h.shape[0] - 1):
            if h[t] == h[t + 1]:
                return _IRREGULAR
    return i


@njit(cache=True, nogil=True)
def scan(buf, start, n, after_value, numbers, positions, forces, cell, pbc, energy, flags, stress, frames, hashes,
         materials, slow, cnt, stack):
    """Scan the materials of MPTrj JSON in ``buf[start:n]`` (uint8): ``"mp-1": {...}, "mp-2": {...}, ...``.

    ``after_value``: ``start`` is just after a material (a ``,`` or the end is expected first).
    Output (F frames, A atoms, M materials of capacity; ``cnt`` = [frames, atoms, slow numbers, materials]
    written, to be zeroed by the caller): ``numbers`` int64 (A,), ``positions`` / ``forces`` float64 (3A,)
    (Å, eV/Å; NaN for frames without forces), ``cell`` float64 (9F,) (Å, rows), ``pbc`` int8 (3F,),
    ``energy`` float64 (F,) (eV), ``flags`` int8 (2F,) (has forces, has stress), ``stress`` float64 (9F,)
    (kBar, as in the file; NaN when absent), ``frames`` int64 (F, 3) (frame id start, end, sites),
    ``hashes`` uint64 (F,) scratch, ``materials`` int64 (M, 7) (key start, key end, value start, value end,
    regular, first frame, end frame), ``slow`` int64 (S, 4) (array code, index, token start, end) for
    numbers to convert with Python's float.

    Returns (status, pos, after_value) with the status :data:`NEED_MORE`, :data:`STOPPED`, :data:`ERROR` or
    :data:`FULL`; ``after_value`` says whether pos is just after a material.
    """
    i = start
    if after_value:
        i = _ws(buf, i, n)
        if i >= n:
            return NEED_MORE, i, True
        if buf[i] != 44:
            return STOPPED, i, True
        i += 1
    while True:
        i = _ws(buf, i, n)
        if i >= n:
            return NEED_MORE, i, False
        if buf[i] != 34:
            return STOPPED, i, False
        m = cnt[3]
        if m >= materials.shape[0]:
            return FULL, i, False
        begin = i
        key_end, special = _string(buf, i, n)
        if key_end == _INCOMPLETE:
            return NEED_MORE, begin, False
        if key_end < 0:
            return ERROR, begin, False
        j = _ws(buf, key_end, n)
        if j >= n:
            return NEED_MORE, begin, False
        if buf[j] != 58:
            return ERROR, begin, False
        value_start = _ws(buf, j + 1, n)
        f0 = cnt[0]
        a0 = cnt[1]
        s0 = cnt[2]
        regular = not special
        end = _IRREGULAR
        if regular:
            end = _material(buf, value_start, n, numbers, positions, forces, cell, pbc, energy, flags, stress,
                            frames, hashes, slow, cnt, stack)
            if end == _FULLBUF or end == _INCOMPLETE:
                cnt[0] = f0
                cnt[1] = a0
                cnt[2] = s0
                return (FULL if end == _FULLBUF else NEED_MORE), begin, False
            if end < 0:
                regular = False
        if not regular:
            cnt[0] = f0
            cnt[1] = a0
            cnt[2] = s0
            end, _ = skip_value(buf, value_start, n, stack)
            if end == _INCOMPLETE:
                return NEED_MORE, begin, False
            if end < 0:
                return ERROR, begin, False
        materials[m, 0] = begin + 1
        materials[m, 1] = key_end - 1
        materials[m, 2] = value_start
        materials[m, 3] = end
        materials[m, 4] = 1 if regular else 0
        materials[m, 5] = f0
        materials[m, 6] = cnt[0]
        cnt[3] = m + 1
        i = _ws(buf, end, n)
        if i >= n:
            return NEED_MORE, end, True
        if buf[i] != 44:
            return STOPPED, i, True
        i += 1


@njit(cache=True, nogil=True)
def gather_ids(buf, frames, materials, m, ids, keys):
    """Frame ids and record keys (``mp_id/frame_id``) of the regular materials among the first ``m``, one
    per line, into the uint8 buffers ``ids`` and ``keys`` (large enough: see :meth:`Scanner.ids`).
    Returns (bytes written to ids, to keys)."""
    p = 0
    r = 0
    for k in range(m):
        if materials[k, 4] == 0:
            continue
        ks = materials[k, 0]
        ke = materials[k, 1]
        for f in range(materials[k, 5], materials[k, 6]):
            s = frames[f, 0]
            e = frames[f, 1]
            for t in range(ks, ke):
                keys[r] = buf[t]
                r += 1
            keys[r] = 47
            r += 1
            for t in range(s, e):
                ids[p] = buf[t]
                keys[r] = buf[t]
                p += 1
                r += 1
            ids[p] = 10
            keys[r] = 10
            p += 1
            r += 1
    return p, r


class Scanner:
    """The output buffers of :func:`scan` (reused from call to call) and the call itself.

    ``frames`` / ``atoms`` / ``materials`` / ``slow``: capacities; :meth:`grow` doubles them when a single
    material does not fit.
    """

    def __init__(self, frames: int = 8192, atoms: int = 131072, materials: int = 4096, slow: int = 4096):
        self._allocate(frames, atoms, materials, slow)
        self.stack = np.zeros(_MAX_DEPTH, np.uint8)
        self.cnt = np.zeros(4, np.int64)

    def _allocate(self, frames: int, atoms: int, materials: int, slow: int) -> None:
        self.numbers = np.zeros(atoms, np.int64)
        self.positions = np.zeros(3 * atoms)
        self.forces = np.zeros(3 * atoms)
        self.cell = np.zeros(9 * frames)
        self.pbc = np.zeros(3 * frames, np.int8)
        self.energy = np.zeros(frames)
        self.flags = np.zeros(2 * frames, np.int8)
        self.stress = np.zeros(9 * frames)
        self.frames = np.zeros((frames, 3), np.int64)
        self.hashes = np.zeros(frames, np.uint64)
        self.materials = np.zeros((materials, 7), np.int64)
        self.slow = np.zeros((slow, 4), np.int64)

    def grow(self) -> None:
        """Double every capacity (the buffers' contents are dropped)."""
        self._allocate(2 * self.frames.shape[0], 2 * self.numbers.shape[0], 2 * self.materials.shape[0],
                       2 * self.slow.shape[0])

    def __call__(self, buf: np.ndarray, start: int, n: int, after_value: bool) -> tuple[int, int, bool]:
        """:func:`scan` of ``buf[start:n]``; the counts written are in ``self.cnt``."""
        self.cnt[:] = 0
        status, pos, after = scan(buf, start, n, after_value, self.numbers, self.positions, self.forces, self.cell,
                                  self.pbc, self.energy, self.flags, self.stress, self.frames, self.hashes,
                                  self.materials, self.slow, self.cnt, self.stack)
        return int(status), int(pos), bool(after)

    def ids(self, buf: np.ndarray) -> tuple[list[str], list[str]]:
        """Frame ids and record keys of the regular materials of the last scan, in file order."""
        m = int(self.cnt[3])
        nframes = int(self.cnt[0])
        regular = self.materials[:m][self.materials[:m, 4] == 1]
        id_bytes = int((self.frames[:nframes, 1] - self.frames[:nframes, 0]).sum()) + nframes
        key_bytes = id_bytes + int(((regular[:, 1] - regular[:, 0] + 1) * (regular[:, 6] - regular[:, 5])).sum())
        ids = np.empty(id_bytes, np.uint8)
        keys = np.empty(key_bytes, np.uint8)
        p, r = gather_ids(buf, self.frames, self.materials, m, ids, keys)
        if not p:
            return [], []
        return (ids[:p - 1].tobytes().decode("ascii").split("\n"),
                keys[:r - 1].tobytes().decode("ascii").split("\n"))


def compiled() -> bool:
    """Whether :func:`scan` and :func:`gather_ids` are compiled in this process or cached by numba for this
    source (their cache index exists and matches the file), so that using them costs no compilation.

    Reads numba's cache index through its ``FunctionCache`` (``_cache_file._load_index``, numba 0.5x-0.6x);
    any failure there answers False (the caller then reads without the scanner).
    """
    for fn in (scan, gather_ids):
        if fn.signatures:
            continue
        try:
            if not fn._cache._cache_file._load_index():
                return False
        except Exception:  # noqa: BLE001 - numba internals: no answer means "not known to be compiled"
            return False
    return True
