#!/usr/bin/python3
"""Compare two HDF5 files by content, not by bytes.

    /usr/bin/python3 tests/tools/h5compare.py A.h5 B.h5

Two files are the same when they hold the same tree of groups, datasets and links, and every
object has the same attributes (name, dtype, shape, value) and every dataset the same dtype,
shape, chunk shape, filter pipeline (filter ids, flags and parameters: compression, shuffle,
checksums) and values. Values are compared bit for bit (NaN equals NaN only with the same
bits; strings and variable-length data element by element). What HDF5 itself stamps on a file
(object modification times, free-space layout, the order objects were allocated in) is not
compared: two writes of the same data differ there from run to run.

Used by compare_outputs.py (files written by `ionmsm analyze`) and compare_plugin_outputs.py
(the counts files of fix msm). Exit status 0 when the files are the same, 1 otherwise.
"""
import sys

import h5py
import numpy as np


def _same_values(a, b):
    """True if a and b (numpy arrays or scalars, bytes, str) are equal bit for bit."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "O":  # variable-length strings or sequences: compare the elements
        return all(_same_values(x, y) if isinstance(x, np.ndarray) else type(x) is type(y)
                   and x == y for x, y in zip(a.ravel(), b.ravel()))
    return a.tobytes() == b.tobytes()


def _attribute_differences(name, oa, ob):
    keys_a, keys_b = set(oa.attrs.keys()), set(ob.attrs.keys())
    out = ["%s: attribute '%s' only in the first file" % (name, k) for k in sorted(keys_a - keys_b)]
    out += ["%s: attribute '%s' only in the second file" % (name, k)
            for k in sorted(keys_b - keys_a)]
    for k in sorted(keys_a & keys_b):
        ia, ib = oa.attrs.get_id(k), ob.attrs.get_id(k)
        if ia.dtype != ib.dtype or ia.shape != ib.shape:
            out.append("%s: attribute '%s' has dtype/shape %s %s vs %s %s"
                       % (name, k, ia.dtype, ia.shape, ib.dtype, ib.shape))
        elif not _same_values(oa.attrs[k], ob.attrs[k]):
            out.append("%s: attribute '%s' has other values" % (name, k))
    return out


def _filters(ds):
    """The dataset's filter pipeline as (id, flags, parameters) tuples, in order."""
    plist = ds.id.get_create_plist()
    return [tuple(plist.get_filter(i)[:3]) for i in range(plist.get_nfilters())]


def _dataset_differences(name, da, db):
    layout_a = (da.dtype, da.shape, da.chunks, _filters(da))
    layout_b = (db.dtype, db.shape, db.chunks, _filters(db))
    if layout_a != layout_b:
        return ["%s: dtype, shape, chunks, filters %s vs %s" % (name, layout_a, layout_b)]
    if not _same_values(da[()], db[()]):
        return ["%s: other values" % name]
    return []


def _link_kind(group, key):
    link = group.get(key, getlink=True)
    if isinstance(link, h5py.SoftLink):
        return ("soft link", link.path)
    if isinstance(link, h5py.ExternalLink):
        return ("external link", link.filename, link.path)
    obj = group[key]
    return ("group",) if isinstance(obj, h5py.Group) else ("dataset",)


def _group_differences(name, ga, gb):
    out = _attribute_differences(name, ga, gb)
    keys_a, keys_b = set(ga.keys()), set(gb.keys())
    prefix = name.rstrip("/") + "/"
    out += ["%s%s: only in the first file" % (prefix, k) for k in sorted(keys_a - keys_b)]
    out += ["%s%s: only in the second file" % (prefix, k) for k in sorted(keys_b - keys_a)]
    for k in sorted(keys_a & keys_b):
        child = prefix + k
        kind_a, kind_b = _link_kind(ga, k), _link_kind(gb, k)
        if kind_a != kind_b:
            out.append("%s: %s vs %s" % (child, kind_a, kind_b))
        elif kind_a == ("group",):
            out += _group_differences(child, ga[k], gb[k])
        elif kind_a == ("dataset",):
            out += _attribute_differences(child, ga[k], gb[k])
            out += _dataset_differences(child, ga[k], gb[k])
    return out


def compare_files(path_a, path_b):
    """The differences in content between two HDF5 files, one line each ([] if the same)."""
    with h5py.File(path_a, "r") as fa, h5py.File(path_b, "r") as fb:
        return _group_differences("/", fa, fb)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.strip().split("\n\n")[1])
    diffs = compare_files(argv[1], argv[2])
    for d in diffs:
        print(d)
    print("%s: %s" % ("same content" if not diffs else "%d differences" % len(diffs),
                      " vs ".join(argv[1:])))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
