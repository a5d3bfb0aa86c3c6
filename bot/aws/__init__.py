"""AWS: the WorkSpaces gateway (the only importer of boto3 and botocore) and the sentences its
errors become."""
