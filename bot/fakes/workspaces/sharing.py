"""The WorkSpaces operations that take an image beyond its account and region:
DescribeWorkspaceImagePermissions, UpdateWorkspaceImagePermission (sharing with other accounts)
and CopyWorkspaceImage (into the calling region, from the same account or a share).

Each ``_op_<Operation>`` runs under the store's lock, after the request passed botocore's
model, and answers the operation's output or raises ``SimulatorError`` with the service's
error code."""

from __future__ import annotations

from typing import Any

from bot.fakes.workspaces.protocol import SimulatorError
from bot.fakes.workspaces.store import MAX_TAGS, ImageStore, StoredImage


class SharingOperations(ImageStore):
    """Image permissions and copies."""

    def _own_image(self, image_id: str, account: str, region: str) -> StoredImage:
        image = self._bucket(account, region).get(image_id)
        if image is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The image {image_id} could not be found."
            )
        return image

    def _op_DescribeWorkspaceImagePermissions(
        self, params: dict, account: str, region: str
    ) -> dict:
        image = self._own_image(params["ImageId"], account, region)
        limit = params.get("MaxResults", self.page_size)
        page, token = self._page(list(image.shared_with), params, limit, [image.image_id])
        result: dict[str, Any] = {
            "ImageId": image.image_id,
            "ImagePermissions": [{"SharedAccountId": shared} for shared in page],
        }
        if token:
            result["NextToken"] = token
        return result

    def _op_UpdateWorkspaceImagePermission(self, params: dict, account: str, region: str) -> dict:
        image = self._own_image(params["ImageId"], account, region)
        other = params["SharedAccountId"]
        if image.state != "AVAILABLE":
            raise SimulatorError(
                "ResourceUnavailableException",
                f"The image {image.image_id} is {image.state}; only an AVAILABLE image can be "
                "shared or unshared.",
            )
        if other == account:
            raise SimulatorError(
                "InvalidParameterValuesException",
                f"The image {image.image_id} belongs to {account}; it cannot be shared with its "
                "own account.",
            )
        if params["AllowCopyImage"]:
            if other not in image.shared_with:
                image.shared_with.append(other)
        elif other in image.shared_with:
            image.shared_with.remove(other)
        return {}

    def _op_CopyWorkspaceImage(self, params: dict, account: str, region: str) -> dict:
        source_id = params["SourceImageId"]
        source_region = params["SourceRegion"]
        source = self._bucket(account, source_region).get(source_id)
        if source is None:
            source = next(
                (
                    image
                    for (owner, reg), bucket in self._images.items()
                    if reg == source_region and owner != account
                    for image in bucket.values()
                    if image.image_id == source_id and account in image.shared_with
                ),
                None,
            )
        if source is None:
            raise SimulatorError(
                "ResourceNotFoundException",
                f"The image {source_id} could not be found in {source_region}.",
            )
        if source.state != "AVAILABLE":
            raise SimulatorError(
                "ResourceUnavailableException",
                f"The image {source_id} is {source.state}; only an AVAILABLE image can be copied.",
            )
        bucket = self._bucket(account, region)
        self._check_room(bucket, params["Name"])
        tags = {tag["Key"]: tag.get("Value", "") for tag in params.get("Tags", [])}
        if len(tags) > MAX_TAGS:
            raise SimulatorError("ResourceLimitExceededException", "Too many tags.")
        new_id = self._new_id()
        now = self._clock()
        bucket[new_id] = StoredImage(
            image_id=new_id,
            account_id=account,
            region=region,
            name=params["Name"],
            description=params.get("Description"),
            platform=source.platform,
            state="PENDING",
            update_available=source.update_available,
            update_description=source.update_description,
            created=now,
            tags=tags,
            ready_at=now + self.pending_seconds,
            source_image_id=source_id,
        )
        return {"ImageId": new_id}
