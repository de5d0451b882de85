"""Type names that Great Expectations accepts for each packet column, per engine.

A Great Expectations type check compares a column's type with a list of names.
The Spark engine reads names of ``pyspark.sql.types`` classes (``LongType``) and
the pandas engine reads numpy and pandas dtype names (``int64``, ``Int64Dtype``)
or, for object columns, Python type names checked value by value (``str``,
``bool``). Each engine skips the names it does not recognise, so one list that
contains both sets of names works on both engines, and one packet suite serves
pandas and Spark alike.

The pandas names cover what ``pyarrow.Table.to_pandas()`` produces from a
Parquet packet table: the numpy dtype of the column, the pandas nullable
extension dtype (``dtype_backend="numpy_nullable"``), and, for a nullable
integer column that contains nulls, ``float64`` with NaN. A nullable boolean or
string column with nulls becomes an object column, which is checked value by
value with the Python type name.

NOTE: Accepting ``float64`` for nullable integer columns means a pandas frame
with a fractional value in such a column (a TTL of 64.5) passes the type check.
Pyarrow-backed pandas dtypes (``int64[pyarrow]``) are not accepted.
"""

from __future__ import annotations

import pyarrow as pa

# Arrow type -> (Spark type class name, numpy dtype name, pandas nullable dtype class name).
_INTEGER_TYPE_NAMES: dict[pa.DataType, tuple[str, str, str]] = {
    pa.int8(): ("ByteType", "int8", "Int8Dtype"),
    pa.int16(): ("ShortType", "int16", "Int16Dtype"),
    pa.int32(): ("IntegerType", "int32", "Int32Dtype"),
    pa.int64(): ("LongType", "int64", "Int64Dtype"),
}


def type_names_for_field(field: pa.Field) -> list[str]:
    """Build the ``type_list`` for ``ExpectColumnValuesToBeInTypeList`` from an Arrow field.

    Args:
        field: A field of the packet schema. Its type must be a signed integer
            of 8 to 64 bits, ``bool`` or ``string``, the types the packet schema uses.

    Returns:
        Spark and pandas type names, in that order, that a column of this field
        may have after a Parquet round trip on either engine.

    Raises:
        ValueError: If the field's Arrow type has no mapping here. Extend
            ``_INTEGER_TYPE_NAMES`` or this function when the schema gains a new type.
    """
    arrow_type = field.type

    if arrow_type in _INTEGER_TYPE_NAMES:
        spark_name, numpy_name, nullable_name = _INTEGER_TYPE_NAMES[arrow_type]
        names = [spark_name, numpy_name, nullable_name]

        # pyarrow converts an integer column with nulls to float64 with NaN.
        if field.nullable:
            names.append("float64")
        return names

    if arrow_type == pa.bool_():
        # "bool" matches the numpy dtype and, on object columns, Python bools.
        return ["BooleanType", "bool", "BooleanDtype"]

    if arrow_type == pa.string():
        # "str" matches Python strings in object columns, the usual pandas form.
        return ["StringType", "str", "StringDtype"]

    raise ValueError(
        f"Packet column {field.name!r} has Arrow type {arrow_type}, which has no "
        "Great Expectations type names. Supported types are int8, int16, int32, "
        "int64, bool and string."
    )
