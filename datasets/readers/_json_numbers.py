"""Correctly rounded decimal -> float64 conversion, compiled with numba, for the MPTrj scanner.

Why hand-written: the MPTrj scanner (:mod:`._mptrj_scan`) writes numbers from JSON bytes straight into
numpy buffers, inside compiled code, so that no Python float object is made per number. No library
offers a float parser callable from numba; libc's ``strtod`` would be, but it costs several times more
per number than this and depends on the C library. The conversion must give exactly the float that
orjson, Python's ``json`` and ``float()`` give (the correctly rounded one), or the fast reader would not
equal the reference one, so it follows two published exact methods:

* Clinger's fast path: a mantissa ``w <= 2**53`` and a power of ten ``10**|q|`` with ``|q| <= 22`` are both
  exact doubles, so one IEEE multiplication or division rounds correctly.
* Otherwise the Eisel-Lemire method (D. Lemire, "Number parsing at a gigabyte per second", Software:
  Practice and Experience 51, 2021; N. Mushtak and D. Lemire, "Fast number parsing without fallback", 2023):
  the 64-bit mantissa times a 128-bit truncated power of five, rounded to 53 bits.

Whatever these cannot settle (more than 19 significant digits, subnormal or overflowing results) is
reported as *slow*, and the caller converts that token with Python's ``float``. The tests compare every
path with ``float()`` bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

__all__ = ["decimal_to_double", "POW5_HI", "POW5_LO"]

_Q_MIN, _Q_MAX = -342, 308  # 10**q outside this range is 0 or inf for any 19-digit mantissa


def _pow5_table() -> tuple[np.ndarray, np.ndarray]:
    """128-bit truncated 5**q for q in [-342, 308], most significant bit set: (high words, low words)."""
    hi = np.empty(_Q_MAX - _Q_MIN + 1, np.uint64)
    lo = np.empty_like(hi)
    for q in range(_Q_MIN, _Q_MAX + 1):
        if q >= 0:
            v = 5 ** q
            v = v << (128 - v.bit_length()) if v.bit_length() <= 128 else v >> (v.bit_length() - 128)
        else:
            p = 5 ** -q
            z = (p - 1).bit_length()  # smallest z with 2**z >= p
            v = (1 << (z + 127 if q >= -27 else 2 * z + 128)) // p + 1
            while v >= 1 << 128:
                v >>= 1
        hi[q - _Q_MIN] = v >> 64
        lo[q - _Q_MIN] = v & ((1 << 64) - 1)
    return hi, lo


POW5_HI, POW5_LO = _pow5_table()
_EXACT_POW10 = np.array([10.0 ** k for k in range(23)])
# 2**(e - 1075) for a biased exponent e in [0, 2046]: mantissa (53 bits) * _POW2[e] is exact for e >= 1
_POW2 = np.array([2.0 ** (e - 1075) for e in range(2047)])

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U9 = np.uint64(9)
_U32 = np.uint64(32)
_U52 = np.uint64(52)
_U63 = np.uint64(63)
_M32 = np.uint64(0xFFFFFFFF)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_PRECISION_MASK = np.uint64(0xFFFFFFFFFFFFFFFF >> 55)
_TWO53 = np.uint64(1 << 53)
_HIDDEN = np.uint64(1 << 52)


@njit(cache=True)
def _mul128(a, b):
    """Full 64 x 64 -> 128-bit product of two uint64: (high, low)."""
    a_lo = a & _M32
    a_hi = a >> _U32
    b_lo = b & _M32
    b_hi = b >> _U32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _U32) + (p1 & _M32) + (p2 & _M32)
    low = (p0 & _M32) | (mid << _U32)
    high = p3 + (p1 >> _U32) + (p2 >> _U32) + (mid >> _U32)
    return high, low


@njit(cache=True)
def decimal_to_double(w, q, negative, pow5_hi, pow5_lo):
    """The float64 nearest to ``(-1 if negative else 1) * w * 10**q``.

    Parameters: ``w`` uint64 mantissa of at most 19 decimal digits, ``q`` int64 power of ten, ``pow5_hi``
    / ``pow5_lo`` the tables :data:`POW5_HI` / :data:`POW5_LO`. Returns ``(ok, value)``: ``value`` is the correctly rounded double
    when ``ok``; ``ok`` is False when the result is subnormal or overflows (the caller then uses Python's
    ``float``).
    """
    if w == _U0 or q < _Q_MIN:
        return True, (-0.0 if negative else 0.0)
    if q > _Q_MAX:
        return False, 0.0
    if w <= _TWO53 and -22 <= q <= 22:  # Clinger: both operands exact, one rounding
        x = np.float64(w)
        x = x * _EXACT_POW10[q] if q >= 0 else x / _EXACT_POW10[-q]
        return True, (-x if negative else x)
    lz = np.uint64(leading_zeros(w))
    w = w << lz
    idx = q - _Q_MIN
    high, low = _mul128(w, pow5_hi[idx])
    if (high & _PRECISION_MASK) == _PRECISION_MASK:  # the low word of 5**q may still carry into ours
        high2, _ = _mul128(w, pow5_lo[idx])
        low = low + high2
        if high2 > low:
            high = high + _U1
    if low == _ALL and not (-27 <= q <= 55):  # cannot happen (Mushtak & Lemire); kept as a guard
        return False, 0.0
    upperbit = high >> _U63
    shift = upperbit + _U9
    mantissa = high >> shift
    power2 = (((152170 + 65536) * q) >> 16) + 63 + np.int64(upperbit) - np.int64(lz) + 1023
    if power2 <= 0:  # subnormal
        return False, 0.0
    if low <= _U1 and -4 <= q <= 23 and (mantissa & _U3) == _U1 and (mantissa << shift) == high:
        mantissa = mantissa & ~_U1  # exactly half-way: round to even, i.e. down here
    mantissa = mantissa + (mantissa & _U1)
    mantissa = mantissa >> _U1
    if mantissa >= (_TWO53):
        mantissa = _HIDDEN
        power2 += 1
    if power2 >= 0x7FF:
        return False, 0.0
    x = np.float64(mantissa) * _POW2[power2]  # a 53-bit integer times a power of two: exact
    return True, (-x if negative else x)
