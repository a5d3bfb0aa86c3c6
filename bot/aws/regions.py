"""The regions where WorkSpaces exists, from botocore's endpoint data (installed with boto3)."""

from __future__ import annotations

from functools import lru_cache

import botocore.session


@lru_cache(maxsize=1)
def workspaces_regions() -> tuple[str, ...]:
    """Every region where botocore's endpoint data (installed with boto3) offers WorkSpaces,
    in every partition (aws, aws-cn, aws-us-gov, ...)."""
    session = botocore.session.get_session()
    return tuple(
        sorted(
            {
                region
                for partition in session.get_available_partitions()
                for region in session.get_available_regions("workspaces", partition)
            }
        )
    )
