"""The recordings' archive (S3 bucket RecordingsBucket) of issue 25.

The copy is a multipart streaming upload (`upload_fileobj` reads the download as it arrives, a part at a time: memory
stays at a few parts whatever the file's size). A read gets a presigned GET of at most `PRESIGNED_URL_SECONDS`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.domain.recordings import PRESIGNED_URL_SECONDS, RecordingUnavailable
from iptelefon.platform.settings import get_settings

PART_BYTES = 5 * 1024 * 1024  # S3's smallest part: the least memory
# One part uploading, one read ahead: the download is one stream read in order, and s3transfer would otherwise keep
# up to 10 parts of a non-seekable stream in memory (`max_in_memory_upload_chunks`, which boto3's constructor does not
# take). Memory: about three parts whatever the file's size (bench/recordings.py measures it).
TRANSFER = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=1)
TRANSFER.max_in_memory_upload_chunks = 2


@lru_cache(maxsize=1)
def s3_client() -> Any:  # no S3 stubs in the dev requirements
    # Signature v4 for presigned URLs (what every region takes); virtual-host style is boto3's default on AWS.
    return boto3.client("s3", config=Config(signature_version="s3v4", retries={"mode": "standard"}))


class S3Archive:
    """The bucket, as the copier writes it and the reads link to it (`usecases.ports.RecordingArchive`)."""

    def __init__(self, bucket: str | None = None, client: Any = None) -> None:
        self.bucket = bucket or str(get_settings().recordings_bucket)
        self.client = client or s3_client()

    def upload(self, key: str, stream: Any, content_type: str) -> None:  # anything with `read(size)`
        try:
            self.client.upload_fileobj(
                stream, self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=TRANSFER
            )
        except (BotoCoreError, ClientError) as error:
            raise RecordingUnavailable(f"the archive refused the upload ({type(error).__name__})") from error

    def url(self, key: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
        )
        return url
