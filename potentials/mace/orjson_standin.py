"""A json-based stand-in for orjson, installed into the MACE venv by scripts/setup-mace when
the real orjson (a Rust extension Debian bookworm does not package) is absent.

mace imports orjson in mace.data for its fairchem LMDB reader only; the pipeline of
examples/mace_pipeline never reaches that reader. dumps() returns bytes and loads() accepts
bytes or str, as orjson's do; numpy arrays and scalars are written as lists and numbers.
"""
import json

OPT_SERIALIZE_NUMPY = 1 << 4
OPT_INDENT_2 = 1
OPT_SORT_KEYS = 1 << 5
JSONDecodeError = json.JSONDecodeError
JSONEncodeError = TypeError


def _default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def dumps(obj, default=None, option=None):
    opts = option or 0
    text = json.dumps(obj, default=default or _default, separators=(",", ":"),
                      indent=2 if opts & OPT_INDENT_2 else None,
                      sort_keys=bool(opts & OPT_SORT_KEYS))
    return text.encode("utf-8")


def loads(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8")
    return json.loads(data)
