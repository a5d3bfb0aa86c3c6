"""An Amazon WorkSpaces (and minimal STS) simulator that the real boto3 reaches over HTTP.

Used by the tests and by ``wsimg demo``: point AWS_ENDPOINT_URL at ``WorkSpacesSimulator.url``
and every boto3 client talks to it. It speaks the protocols botocore actually sends (AWS JSON
1.1 for WorkSpaces, the query protocol with XML answers for STS), checks every WorkSpaces
request against botocore's own service model (types, lengths, patterns, enums) the way the
service does, and keeps images per (account, region) with the semantics of
CreateUpdatedWorkspaceImage: PENDING, then AVAILABLE or ERROR some time later; the accounts an
image is shared with; bundles and the WorkSpaces on them, which RebuildWorkspaces takes through
REBUILDING to AVAILABLE (or ERROR).

Tests steer it with ``fail_next``, ``throttle``, ``deny``, ``hold``, ``fail_build``,
``fail_rebuild``, ``add_bundle``, ``add_workspace``, ``set_connected`` and read ``calls``. The
region comes from the SigV4 credential scope and the account from the access key: any key is
the default account, keys issued by the simulator's AssumeRole belong to the role's account.
Signatures are not verified.

By subject: ``model`` (botocore-model validation), ``protocol`` (wire formats and the HTTP
server), ``store`` (images, bundles, WorkSpaces and records), ``service`` (the image and STS
operations), ``fleet`` (bundle and WorkSpace operations), ``sharing`` (image permissions and
copies), ``simulator`` (lifecycle and the controls for tests), ``seed`` (demo data, standalone use).

Run it alone with ``python -m bot.fakes.workspaces --port 4566``.
"""

from bot.fakes.hold import Hold
from bot.fakes.workspaces.model import validation_message
from bot.fakes.workspaces.protocol import (
    JSON_CONTENT_TYPE,
    STS_NAMESPACE,
    TARGET_PREFIX,
    SimulatorError,
)
from bot.fakes.workspaces.seed import RolloutSeed, main, seed_demo_data, seed_rollout
from bot.fakes.workspaces.service import IMPLEMENTED, MAX_TAGS, STS_OPERATIONS
from bot.fakes.workspaces.simulator import CLEARED_ENV, WorkSpacesSimulator
from bot.fakes.workspaces.store import (
    DEFAULT_ACCOUNT,
    DEFAULT_IMAGE_LIMIT,
    DEFAULT_UPDATE_DESCRIPTION,
    LINUX_UPDATE_DESCRIPTION,
    Call,
)

__all__ = [
    "CLEARED_ENV",
    "DEFAULT_ACCOUNT",
    "DEFAULT_IMAGE_LIMIT",
    "DEFAULT_UPDATE_DESCRIPTION",
    "IMPLEMENTED",
    "JSON_CONTENT_TYPE",
    "LINUX_UPDATE_DESCRIPTION",
    "MAX_TAGS",
    "STS_NAMESPACE",
    "STS_OPERATIONS",
    "TARGET_PREFIX",
    "Call",
    "Hold",
    "RolloutSeed",
    "SimulatorError",
    "WorkSpacesSimulator",
    "main",
    "seed_demo_data",
    "seed_rollout",
    "validation_message",
]
