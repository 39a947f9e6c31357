"""Bounded input: what a hostile GraphQL query and a Parquet bomb cost, refused vs read.

    uv run python benchmarks/bounded_input.py

Times parsing and validating a query of 200,000 aliases without the limits (the
reference) against the same request under the default limits (refused by the parser's
token limit), and the peak memory of refusing a 60 M-row Parquet file from its footer
against decoding it, in the same run. Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import io
import resource
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from graphql import parse, validate

from crowdquant.api.graphql import build_schema
from crowdquant.api.graphql.limits import GraphQLLimits
from crowdquant.scoring.validation import SubmissionError, validate_submission
from crowdquant.settings import Settings


def parquet_bomb(million_rows: int) -> bytes:
    """A few KB per million rows: one id, repeated, and no predictions."""
    rows = 1_000_000
    ids = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int8)), pa.array(["n01"]))
    group = pa.table({"id": ids, "prediction": pa.nulls(rows, pa.float64())})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, group.schema) as writer:
        for _ in range(million_rows):
            writer.write_table(group)
    return buffer.getvalue()


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def seconds(work: object) -> float:
    assert callable(work)
    start = time.process_time()
    work()
    return time.process_time() - start


def graphql_figures(aliases: int) -> None:
    fields = " ".join(f"a{i}: rounds(tournament: 8) {{ number }}" for i in range(aliases))
    query = f"{{ {fields} }}"
    settings = Settings()
    limits = GraphQLLimits(
        settings.graphql_max_tokens, settings.graphql_max_depth, settings.graphql_max_cost
    )
    schema = build_schema()

    def unlimited() -> None:
        validate(schema, parse(query))

    def limited() -> None:
        try:
            validate(schema, limits.parse(None, {"query": query}), limits.rules(None, None, {}))  # type: ignore[arg-type]
        except Exception as error:
            assert "tokens" in str(error)

    reference, bounded = seconds(unlimited), seconds(limited)
    print(f"GraphQL, {aliases:,} aliases ({len(query) / 2**20:.1f} MiB), CPU seconds:")
    print(f"  parse + validate, no limits: {reference:.2f} s")
    print(f"  with the limits (refused):   {bounded:.4f} s   ratio {reference / bounded:,.0f}x")


def parquet_figures(million_rows: int) -> None:
    bomb = parquet_bomb(million_rows)
    before = peak_rss_gb()
    try:
        validate_submission(bomb, ["n01", "n02"], filename="bomb.parquet")
    except SubmissionError as error:
        print(f"Parquet bomb, {len(bomb) / 1000:.0f} KB on disk: {error.message}")
    refused = peak_rss_gb()
    frame = pd.read_parquet(io.BytesIO(bomb))
    decoded = peak_rss_gb()
    print(f"  peak memory before: {before:.2f} GB, after the refusal: {refused:.2f} GB,")
    print(f"  after decoding it anyway ({len(frame):,} rows, the reference): {decoded:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aliases", type=int, default=200_000)
    parser.add_argument("--million-rows", type=int, default=60)
    args = parser.parse_args()
    parquet_figures(args.million_rows)  # first, so its peak memory is its own
    graphql_figures(args.aliases)


if __name__ == "__main__":
    main()
