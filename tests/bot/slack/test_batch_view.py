"""A batch's message names its images as long as they fit, then says how many more: a list is
never cut silently (Slack's 3000 characters a section)."""

from __future__ import annotations

from bot.domain.ports import BatchView
from bot.fakes.slack import validate_blocks
from bot.slack.batch_view import batch_message
from storage.models import Batch, UpdateRequest


def test_long_names_fill_the_section_then_the_rest_is_counted() -> None:
    batch = Batch(
        id="b" * 32, listing_id="l" * 32, scope="all", scope_text="every image listed",
        state="approved", count=30, created_by="UAPPROVER", decided_by="UAPPROVER",
    )  # fmt: skip
    requests = [
        UpdateRequest(
            id=f"{n:032d}",
            state="approved",
            account_id="123456789012",
            region="eu-west-1",
            source_image_id=f"wsi-{n:09d}",
            source_image_name="N" * 64,
            requested_by="UAPPROVER",
            worker_id=None,
        )
        for n in range(30)
    ]
    message = batch_message(BatchView(batch=batch, requests=requests, max_concurrent=10))

    assert validate_blocks(message["blocks"]) == []
    names = message["blocks"][1]["text"]["text"]
    shown = [line for line in names.splitlines() if line.startswith(":hourglass:")]
    assert all(line.endswith(": queued") for line in shown)  # whole lines, none cut
    assert names.splitlines()[-1] == f"…and {30 - len(shown)} more"
