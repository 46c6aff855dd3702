"""The documented examples of the DirectMail, VOD and Vision AI formats, shared by the
unit and integration tests (event-sources.md §4.5, §5, §6; seed 001)."""

from __future__ import annotations

import json


def compact(example: str) -> str:
    """The example as one compact JSON line, member order kept."""
    return json.dumps(json.loads(example), ensure_ascii=False, separators=(",", ":"))


def dm_fields(body: str) -> dict[str, object]:
    """A `k=v&...` body split the way consumers split it: on '&', then the first '='."""
    return dict(pair.split("=", 1) for pair in body.split("&"))


# DirectMail (§5)

DM_SUCCESS = (
    "env_id=600012345&msg_id=88120341597622&account=notice@mail.example.com"
    "&from=notice@mail.example.com&rcpt=alice@example.net&recv_time=2025-03-14 16:05:01"
    "&end_time=2025-03-14 16:05:03&status=0&event=deliver&region=cn-hangzhou&err_code=250"
    "&err_msg=250 Send Mail OK"
)
DM_FAILURE = (
    "env_id=600012346&msg_id=88120341597623&account=notice@mail.example.com"
    "&from=notice@mail.example.com&rcpt=nobody@example.org&recv_time=2025-03-14 16:05:02"
    "&end_time=2025-03-14 16:05:09&status=2&event=deliver&region=cn-hangzhou&err_code=550"
    "&err_msg=550 5.1.1 Mailbox does not exist"
)
# Seed 001, 邮件推送 chapter, 消息示例.
SEED_SUCCESS = (
    "env_id=457323378&msg_id=77041400535408&account=test@test.com&from=test@test.com"
    "&rcpt=abc@abc.com&recv_time=2017-04-14 11:44:47&end_time=2017-04-14 11:44:48&status=0"
    "&event=deliver&region=cn-hangzhou&err_code=250&err_msg=250 Send Mail OK"
)
SEED_FAILURE = (
    "env_id=457323379&msg_id=77041400535409&account=test@test.com&from=test@test.com"
    "&rcpt=abc@abc.com&recv_time=2017-04-14 11:44:48&end_time=2017-04-14 11:44:49&status=2"
    "&event=deliver&region=cn-hangzhou&err_code=550&err_msg=550 No Such User"
)
SEED_TEMPLATE = (
    "env_id=$env_id&msg_id=$msg_id&account=$account&from=$from&rcpt=$rcpt&recv_time=$time"
    "&end_time=$time&status=$status&event=$event&region=$region&err_code=$err_code"
    "&err_msg=$err_msg"
)


# VOD (§4.5)

VOD_EXAMPLES = [
    """{"EventTime":"2025-03-14T08:30:12Z","EventType":"FileUploadComplete",
 "VideoId":"9f2c4e6a81b34d07a5c1e2f3d4b5a697","Status":"success","Size":73418235,
 "FileUrl":"https://outin-1a2b3c4d5e6f.oss-cn-shanghai.aliyuncs.com/sv/3c1d2e3f-18f2a1b0c9d/3c1d2e3f-18f2a1b0c9d.mp4",
 "Extend":"{\\"course\\":\\"physics-101\\"}"}""",
    """{"Status":"success","FileURL":"https://outin-1a2b3c4d5e6f.oss-cn-shanghai.aliyuncs.com/image/default/4B1E9D2C7A3F48E6B05D1C2A3E4F5067.jpg",
 "AppId":"app-1000000","EventType":"ImageUploadComplete","EventTime":"2025-03-14T08:31:02Z",
 "Size":214733,"ImageId":"b7e1d2c3a4f54e6d8c9b0a1f2e3d4c5b"}""",
    """{"EventTime":"2025-03-14T08:35:40Z","EventType":"StreamTranscodeComplete",
 "VideoId":"9f2c4e6a81b34d07a5c1e2f3d4b5a697","Status":"success","Bitrate":"1208",
 "Definition":"SD","Duration":312.48,"Encrypt":false,
 "FileUrl":"https://vod.example.com/9f2c4e6a81b34d07a5c1e2f3d4b5a697/0a1b2c3d4e5f4a6b7c8d9e0f1a2b3c4d-sd.mp4",
 "Format":"mp4","Fps":"25","Height":720,"Width":1280,"Size":47193822,
 "JobId":"5e6f7a8b9c0d4e1f2a3b4c5d6e7f8091","Extend":"{\\"course\\":\\"physics-101\\"}"}""",
    """{"EventTime":"2025-03-14T08:36:02Z","EventType":"TranscodeComplete",
 "VideoId":"9f2c4e6a81b34d07a5c1e2f3d4b5a697","Status":"success","Extend":"{\\"course\\":\\"physics-101\\"}",
 "StreamInfos":[
  {"Status":"success","Bitrate":"612","Definition":"LD","Duration":312.48,"Encrypt":false,
   "FileUrl":"https://vod.example.com/9f2c4e6a81b34d07a5c1e2f3d4b5a697/0a1b2c3d-ld.m3u8","Format":"m3u8",
   "Fps":"25","Height":540,"Width":960,"Size":23911846,"JobId":"1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"},
  {"Status":"fail","Definition":"HD","Format":"m3u8","JobId":"2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7",
   "ErrorCode":"InvalidParameter.ResourceContentBad",
   "ErrorMessage":"The input video stream is corrupted"}]}""",
    """{"EventType":"SnapshotComplete","EventTime":"2025-03-14T08:35:10Z",
 "VideoId":"9f2c4e6a81b34d07a5c1e2f3d4b5a697","Status":"success",
 "CoverUrl":"https://vod.example.com/9f2c4e6a81b34d07a5c1e2f3d4b5a697/snapshots/7c8d9e0f-00003.jpg",
 "SnapshotInfos":[{"Status":"success","SnapshotType":"CoverSnapshot","SnapshotCount":8,
   "SnapshotFormat":"9f2c4e6a81b34d07a5c1e2f3d4b5a697/snapshots/7c8d9e0f-{SnapshotCount}.jpg",
   "SnapshotRegular":"https://vod.example.com/9f2c4e6a81b34d07a5c1e2f3d4b5a697/snapshots/7c8d9e0f-{SnapshotCount}.jpg",
   "JobId":"3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8"}]}""",
    """{"VideoId":"9f2c4e6a81b34d07a5c1e2f3d4b5a697","Duration":"312.48","Height":"1080","Width":"1920",
 "Fps":"25","Bitrate":"1884","Size":"73418235","EventTime":"2025-03-14T08:30:20Z",
 "EventType":"VideoAnalysisComplete","Status":"success"}""",
]  # fmt: skip


# Vision AI (§6)

VISION_EXAMPLE = """{"jobId":"3F2A5C1E-8B4D-5E6F-9A0B-1C2D3E4F5A6B",
 "result":{"VideoUrl":"https://viapi-results.example.com/super-resolve/2025-03-14/3F2A5C1E.mp4?Expires=1741945200&Signature=abc123"},
 "status":"PROCESS_SUCCESS"}"""  # fmt: skip
