"""PostObject: the HTML form upload (spec 7.9), signed by a policy (spec 4.8).

The file streams into a blob while the form is read; the policy's size and field
conditions are checked once its size is known, and only then is the object committed.
A refused upload leaves nothing behind.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from tidings.api.oss.call import OssCall
from tidings.api.oss.callback import POST_OBJECT as POST_OBJECT_CALLBACK
from tidings.api.oss.callback import parse_callback, with_callback
from tidings.api.oss.callback_vars import form_variables
from tidings.api.oss.context import OssContext, Reply
from tidings.api.oss.post_form import read_post_form
from tidings.api.oss.wire import XML_TYPE, document, el
from tidings.api.oss.wire import quoted_etag as quoted
from tidings.auth.oss_policy import authenticate_post, check_conditions
from tidings.errors import ServiceError, invalid_argument
from tidings.services import access
from tidings.services.object_events import ANONYMOUS_PRINCIPAL, Origin
from tidings.services.object_rules import (
    OBJECT_ACLS,
    STORAGE_CLASSES,
    check_choice,
    check_key,
    parse_bool,
    parse_tagging_header,
    stored_headers,
    user_meta,
)
from tidings.services.objects import POST_OBJECT, ObjectAttrs


def _attrs(fields: dict[str, str], key: str, file_type: str | None) -> ObjectAttrs:
    headers = dict(fields)
    if "content-type" not in headers and file_type:
        headers["content-type"] = file_type
    storage_class = fields.get("x-oss-storage-class")
    if storage_class is not None:
        check_choice(storage_class, STORAGE_CLASSES, "x-oss-storage-class")
    tagging = fields.get("x-oss-tagging")
    return ObjectAttrs(
        headers=stored_headers(headers, key),
        meta=user_meta(fields),
        acl=check_choice(
            fields.get("x-oss-object-acl", "default"), OBJECT_ACLS, "x-oss-object-acl"
        ),
        storage_class=storage_class,
        tags=parse_tagging_header(tagging) if tagging else {},
    )


async def post_object(context: OssContext, call: OssCall) -> Reply:
    """Store the form's file under the form's key, as the policy allows."""
    assert call.bucket is not None
    bucket = await context.buckets.get(call.bucket)
    form = await read_post_form(call.receive, call.headers.get("content-type", ""))
    fields = form.fields
    auth, policy = authenticate_post(fields, bucket.name, context.keys, time.time())
    account = auth.key.account_id if auth.key is not None else None
    access.require(account, bucket, None, write=True)
    raw_key = fields.get("key")
    if not raw_key:
        raise invalid_argument("The form needs a key field.")
    key = check_key(raw_key.replace("${filename}", form.file_name))
    attrs = _attrs(fields, key, form.file_content_type)
    # Parsed before the file is written: a bad callback or variable stores nothing.
    callback = parse_callback(fields.get("callback"), "callback")
    variables = form_variables(fields)
    info = await context.objects.write_blob(form.file, None, fields.get("content-md5"))
    try:
        if policy is not None:
            check_conditions(policy, {**fields, "key": raw_key}, bucket.name, info.size)
    except ServiceError:
        await context.objects.blobs.delete(info.blob_id)
        raise
    call.origin = Origin(
        call.request_id,
        call.request.client,
        account or ANONYMOUS_PRINCIPAL,
        variables,
    )
    outcome = await context.objects.commit_blob(
        bucket,
        key,
        context.objects.new_object(bucket, info, attrs),
        parse_bool(fields.get("x-oss-forbid-overwrite")),
        call.origin,
        POST_OBJECT,
    )
    version = outcome.version
    headers = [("ETag", quoted(version.etag)), ("x-oss-hash-crc64ecma", str(version.crc64))]
    if bucket.versioning:
        headers.append(("x-oss-version-id", version.version_id))
    if callback is not None:
        # The callback's answer is the response: success_action_* no longer apply.
        return with_callback(
            call, callback, Reply(200, headers), bucket.name, version, POST_OBJECT_CALLBACK
        )
    redirect = fields.get("success_action_redirect")
    if redirect:
        query = "&".join(
            f"{name}={quote(value, safe='')}"
            for name, value in (("bucket", bucket.name), ("key", key), ("etag", version.etag))
        )
        separator = "&" if "?" in redirect else "?"
        headers.append(("Location", f"{redirect}{separator}{query}"))
        return Reply(303, headers)
    status = fields.get("success_action_status", "204")
    if status == "201":
        body = document(
            "PostResponse",
            [
                el("Bucket", bucket.name),
                el("Location", f"http://{call.host}/{bucket.name}/{quote(key)}"),
                el("Key", key),
                el("ETag", quoted(version.etag)),
            ],
        )
        return Reply(201, [*headers, ("Content-Type", XML_TYPE)], body)
    return Reply(200 if status == "200" else 204, headers)
