"""The checkpoint page: scan a card with the device camera (jsQR, vendored from npm and served
from /static), type or paste the QR text (keyboard-wedge scanners), or upload a photo of the
card (decoded here with zxing-cpp). Shows the verdict and the verified claims.

The verification is the offline one (`sanad.verify.verify`) with this registry's trust list
and current status list: exactly what a disconnected checkpoint holding a fresh trust bundle
would conclude. With a photo of the holder, the 1:1 face check runs too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sanad.api.deps import (
    Principal,
    Public,
    RegistryDep,
    audit_verification,
    current_status,
    require_page,
)
from sanad.api.routers.verify import verify_with_registry
from sanad.credentials.status import StatusList
from sanad.errors import SanadError
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.verification_audit import event_for
from sanad.verify import VerificationResult
from sanad.verify.face import probe_from_image
from sanad.verify.scan import MAX_IMAGE_BYTES, read_qr_codes
from sanad.web.session import CsrfChecked, render

router = APIRouter(include_in_schema=False)
Checkpoint = Annotated[Principal, Depends(require_page(Role.VERIFIER, Role.CARD_OFFICER))]

REASON_TEXT: dict[str, str] = {
    "malformed_prefix": "Not a card code this checkpoint knows.",
    "malformed_base45": "The code is damaged or incomplete (text layer).",
    "malformed_zlib": "The code is damaged or incomplete (compression layer).",
    "not_cose_sign1": "The code is not a signed credential.",
    "malformed_claims": "The signed content is not a valid card.",
    "unsupported_alg": "Signed with an algorithm this checkpoint does not accept.",
    "unknown_key": "Signed by a key this checkpoint does not trust.",
    "bad_signature": "The signature does not match: the card was altered or forged.",
    "expired": "The card has expired.",
    "not_yet_valid": "The card is not valid yet.",
    "revoked": "The card has been revoked (lost, replaced, surrendered or cancelled).",
    "status_stale": "The revocation list here is out of date: refresh it.",
    "status_unknown": "Revocation status unknown for this card.",
    "face_mismatch": "The photo does not match the face on the card.",
    "face_unavailable": "The card carries no face template to compare with.",
}


async def _read_upload(upload: UploadFile | None) -> bytes | None:
    if upload is None or not upload.filename:
        return None
    data = await upload.read(MAX_IMAGE_BYTES + 1)
    return data or None


def _check(registry: Registry, text: str, photo: bytes | None,
           status: StatusList) -> VerificationResult:
    probe = (probe_from_image(photo, threshold=registry.settings.verify_face_threshold)
             if photo else None)
    return verify_with_registry(registry, text, status=status, face=probe)


async def _verify_and_audit(request: Request, registry: Registry, user: Principal, text: str,
                            photo: bytes | None) -> VerificationResult:
    """Verify off the event loop (the face model is slow) and audit it centrally."""
    status = await current_status(request, registry)
    result = await run_in_threadpool(_check, registry, text, photo, status)
    await audit_verification(request, event_for(result, actor=user.username,
                                                channel="checkpoint"))
    return result


def _page(request: Request, user: Principal, *, result: VerificationResult | None = None,
          error: str | None = None, source: str | None = None,
          status_code: int = 200) -> Response:
    claims: dict[str, Any] = dict(result.claims or {}) if result else {}
    claims.pop("face_template", None)  # biometric data is never shown
    context = {
        "result": result, "claims": claims, "error": error, "source": source,
        "reasons": [(code, REASON_TEXT.get(code, code)) for code in
                    (result.reasons if result else ())],
        "checked_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    return render(request, "checkpoint.html", context, user=user, status_code=status_code)


@router.get("/checkpoint", response_class=HTMLResponse)
def checkpoint_page(request: Request, user: Checkpoint) -> Response:
    return _page(request, user)


@router.post("/checkpoint/verify", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def checkpoint_verify(
    request: Request, registry: RegistryDep, user: Checkpoint,
    qr: Annotated[str, Form(max_length=8000)] = "",
    source: Annotated[str, Form(max_length=20)] = "text",
    holder_photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A QR text from the camera decoder or typed/pasted by a scanner."""
    if not qr.strip():
        return _page(request, user, error="Scan a card or paste its code first.",
                     status_code=422)
    try:
        result = await _verify_and_audit(request, registry, user, qr.strip(),
                                         await _read_upload(holder_photo))
    except SanadError as exc:
        return _page(request, user, error=exc.message, status_code=422)
    return _page(request, user, result=result,
                 source="camera" if source == "camera" else "text")


@router.post("/checkpoint/upload", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def checkpoint_upload(
    request: Request, registry: RegistryDep, user: Checkpoint,
    card_image: Annotated[UploadFile, File()],
    holder_photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A photo of the card: the QR is read here (zxing-cpp), then verified."""
    try:
        image = await _read_upload(card_image)
        texts = await run_in_threadpool(read_qr_codes, image or b"")
        result = await _verify_and_audit(request, registry, user, texts[0],
                                         await _read_upload(holder_photo))
    except SanadError as exc:
        return _page(request, user, error=exc.message, status_code=422)
    return _page(request, user, result=result, source="photo")


# The page's own script and style, served from this origin: the site's CSP allows no inline
# script or style. (jsQR itself is the vendored copy under /static/vendor.)
CHECKPOINT_CSS = """  .cp-grid { display: grid; gap: 1rem; margin-top: 1.5rem;
             grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); }
  .cp-box { border: 1px solid #c9d3d8; border-radius: 6px; padding: 1rem; }
  .cp-verdict { border-radius: 8px; padding: 1rem 1.25rem; margin: 1rem 0; color: #fff; }
  .cp-verdict h2 { margin: 0 0 .25rem; font-size: 1.8rem; letter-spacing: .04em; }
  .cp-valid { background: #17613a; }
  .cp-invalid { background: #9b1c1c; }
  .cp-claims th { text-align: start; padding-inline-end: 1rem; font-weight: normal;
                  color: #555; }
  .cp-claims td { font-weight: 600; }
  #cp-video { width: 100%; max-height: 18rem; background: #111; }
  .cp-error { background: #fff4e5; border: 1px solid #e0a040; padding: .75rem; border-radius: 6px; }
"""

CHECKPOINT_JS = """(function () {
  "use strict";
  var start = document.getElementById("cp-cam-start");
  var video = document.getElementById("cp-video");
  var canvas = document.getElementById("cp-canvas");
  var status = document.getElementById("cp-cam-status");
  var stream = null;
  if (typeof jsQR !== "function" || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) {
    start.disabled = true;
    status.textContent =
      "Camera scanning is not available on this device: use a photo or the code text.";
    return;
  }
  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
  }
  function tick() {
    if (!stream) { return; }
    if (video.readyState === video.HAVE_ENOUGH_DATA) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var code = jsQR(img.data, img.width, img.height,
                      { inversionAttempts: "dontInvert" });
      if (code && code.data) {
        stop();
        status.textContent = "Code read; verifying…";
        document.getElementById("cp-cam-qr").value = code.data;
        document.getElementById("cp-cam-form").submit();
        return;
      }
    }
    requestAnimationFrame(tick);
  }
  start.addEventListener("click", function () {
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        status.textContent = "Hold the card's code in front of the camera.";
        return video.play();
      })
      .then(function () { requestAnimationFrame(tick); })
      .catch(function (err) { status.textContent = "Camera unavailable: " + err.name; });
  });
  window.addEventListener("pagehide", stop);
})();
"""


@router.get("/checkpoint/checkpoint.css", dependencies=[Public])
def checkpoint_css() -> Response:
    return Response(CHECKPOINT_CSS, media_type="text/css")


@router.get("/checkpoint/checkpoint.js", dependencies=[Public])
def checkpoint_js() -> Response:
    return Response(CHECKPOINT_JS, media_type="text/javascript")
