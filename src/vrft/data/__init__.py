"""Data: records, converters, few-shot sampling, the synthetic shapes world, validation, TRL feeding."""

from vrft.data.records import Record, load_records, save_records

__all__ = ["Record", "load_records", "save_records"]
