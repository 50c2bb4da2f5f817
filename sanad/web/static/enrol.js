// Enrolment page enhancements (the form works without them): photo preview, quality feedback
// before submit, and capture from a webcam through getUserMedia.
(function () {
  "use strict";
  var form = document.getElementById("enrol-form");
  if (!form) { return; }
  var csrf = form.querySelector('input[name="csrf"]').value;

  function feedback(block, result) {
    var out = block.querySelector(".feedback");
    out.textContent = "";
    var span = document.createElement("span");
    if (result.accepted) {
      span.className = "ok";
      span.textContent = form.dataset.ok + " (" + Math.round(result.quality * 100) + "%)";
    } else {
      span.className = "error";
      span.textContent = form.dataset.bad + " " + result.reasons.join(", ");
    }
    out.appendChild(span);
    block.classList.toggle("invalid", !result.accepted);
  }

  function check(block, file) {
    var preview = block.querySelector(".preview");
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    block.querySelector('input[type="hidden"]').value = "";
    var body = new FormData();
    body.append("csrf", csrf);
    body.append("photo", file, file.name || "photo.jpg");
    block.querySelector(".feedback").textContent = "…";
    fetch("/enrol/photo-check", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (result) { feedback(block, result); })
      .catch(function () { block.querySelector(".feedback").textContent = ""; });
  }

  // Fingerprint files: which fingers each holds (minutiae, quality), or why it is refused.
  Array.prototype.forEach.call(form.querySelectorAll('input[type="file"][name$="_fingers"]'),
    function (input) {
      var out = document.getElementById(input.id + "-feedback");
      input.addEventListener("change", function () {
        out.textContent = "";
        if (!input.files || !input.files.length) { return; }
        var body = new FormData();
        body.append("csrf", csrf);
        Array.prototype.forEach.call(input.files, function (f) { body.append("fingers", f, f.name); });
        fetch("/enrol/fingers-check", { method: "POST", body: body, credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (result) {
            result.files.forEach(function (file) {
              var item = document.createElement("li");
              if (file.ok) {
                item.className = "ok";
                item.textContent = file.name + ": " + file.views.map(function (v) {
                  return v.finger + " (" + v.minutiae + " · " + v.quality + ")";
                }).join(", ");
              } else {
                item.className = "error";
                item.textContent = file.error;
              }
              out.appendChild(item);
            });
          })
          .catch(function () { out.textContent = ""; });
      });
    });

  Array.prototype.forEach.call(form.querySelectorAll(".photo"), function (block) {
    var input = block.querySelector('input[type="file"]');
    input.addEventListener("change", function () {
      if (input.files && input.files[0]) { check(block, input.files[0]); }
    });
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) { return; }
    var useCamera = block.querySelector(".use-camera");
    var camera = block.querySelector(".camera");
    var video = camera.querySelector("video");
    useCamera.hidden = false;
    useCamera.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false })
        .then(function (stream) {
          video.srcObject = stream;
          camera.hidden = false;
          return video.play();
        })
        .catch(function (err) { block.querySelector(".feedback").textContent = String(err); });
    });
    camera.querySelector(".snap").addEventListener("click", function () {
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth || 640;
      canvas.height = video.videoHeight || 480;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        var file = new File([blob], "camera.jpg", { type: "image/jpeg" });
        var transfer = new DataTransfer();
        transfer.items.add(file);
        input.files = transfer.files;
        if (video.srcObject) { video.srcObject.getTracks().forEach(function (t) { t.stop(); }); }
        camera.hidden = true;
        check(block, file);
      }, "image/jpeg", 0.92);
    });
  });
}());
