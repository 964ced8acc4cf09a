// The little the app does with JavaScript: the quick exit, drag and drop with upload
// progress, and the progress of long work. Every page works without it.
"use strict";

// Quick exit: replace this page (so Back does not return to it) with the chosen site.
function leaveNow(event) {
  if (event) event.preventDefault();
  const link = document.getElementById("leave-now");
  window.location.replace(link ? link.href : "about:blank");
}
document.addEventListener("keydown", (event) => { if (event.key === "Escape") leaveNow(event); });
document.addEventListener("DOMContentLoaded", () => {
  const leave = document.getElementById("leave-now");
  if (leave) leave.addEventListener("click", leaveNow);
  setUpUpload();
  followJob();
});

// Adding evidence: files, folders and zips dropped or chosen are sent with a progress bar.
function setUpUpload() {
  const form = document.getElementById("upload-form");
  const zone = document.getElementById("dropzone");
  if (!form || !zone) return;
  const send = (items) => upload(form, items);
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry())
      .filter(Boolean);
    const items = entries.length ? (await Promise.all(entries.map((entry) => filesIn(entry, "")))).flat()
      : [...event.dataTransfer.files].map((file) => [file, file.name]);
    send(items);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const items = [];
    for (const input of form.querySelectorAll("input[type=file]")) {
      for (const file of input.files) items.push([file, file.webkitRelativePath || file.name]);
    }
    send(items);
  });
}

// Every file inside a dropped folder, with its path inside that folder.
function filesIn(entry, prefix) {
  return new Promise((resolve) => {
    if (entry.isFile) {
      entry.file((file) => resolve([[file, prefix + file.name]]), () => resolve([]));
      return;
    }
    const reader = entry.createReader();
    const found = [];
    const more = () => reader.readEntries(async (batch) => {
      if (!batch.length) {
        resolve((await Promise.all(found.map((child) => filesIn(child, prefix + entry.name + "/")))).flat());
        return;
      }
      found.push(...batch);
      more();
    }, () => resolve([]));
    more();
  });
}

function upload(form, items) {
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("upload-progress");
  const label = document.getElementById("upload-label");
  if (!items.length) {
    status.hidden = false;
    label.textContent = "Choose or drop at least one file first.";
    return;
  }
  const data = new FormData();
  data.append("csrf", form.elements.csrf.value);
  for (const [file, path] of items) {
    data.append("mtime", String(file.lastModified));   // the copy keeps the file's own date
    data.append("file", file, path);
  }
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      bar.value = Math.floor((event.loaded / event.total) * 100);
      label.textContent = `Sending the files to ingest: ${bar.value}%`;
    }
  });
  request.addEventListener("load", () => { window.location.assign(request.responseURL); });
  request.addEventListener("error", () => { label.textContent = "The files could not be sent. Try again."; });
  status.hidden = false;
  form.querySelector("button[type=submit]").disabled = true;
  request.send(data);
}

// A long piece of work: show its progress, then its result.
function followJob() {
  const job = document.getElementById("job");
  if (!job) return;
  const bar = document.getElementById("job-progress");
  const label = document.getElementById("job-label");
  const item = document.getElementById("job-item");
  const poll = async () => {
    const response = await fetch(job.dataset.progress, { credentials: "same-origin" });
    if (!response.ok) return;
    const state = await response.json();
    if (state.finished) { window.location.reload(); return; }
    if (state.total) { bar.max = state.total; bar.value = state.done; }
    label.textContent = `Working… ${state.done}${state.total ? " of " + state.total : ""} done.`;
    item.textContent = state.item;
    setTimeout(poll, 500);
  };
  setTimeout(poll, 300);
}
