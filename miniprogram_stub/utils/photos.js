// Photos of a message: chosen with wx.chooseMedia, shrunk on the phone (long side at most 2,048 px, JPEG) with
// wx.compressImage so that a 12 MB camera photo goes as a few hundred KB, checked against the backend's limits
// (JPEG or PNG, at most photo_max_bytes) with a Chinese message, and sent one a request with wx.uploadFile to
// POST /api/v1/items/{ref}/photos after the message itself (the backend re-encodes them again anyway).
const api = require("./api.js");

const MAX_SIDE = 2048; // the backend's PHOTO_MAX_SIDE: nothing larger is kept
const QUALITY = 80;
const ACCEPTED_TYPES = ["jpeg", "jpg", "png"];
const WRONG_TYPE = "只能上传 JPG 或 PNG 格式的照片，这个文件不是。";

function promised(fn, options) {
  return new Promise((resolve, reject) => fn(Object.assign({}, options, { success: resolve, fail: reject })));
}

// Up to `count` photos from the album or the camera; [] when the resident cancels.
function choose(count) {
  return promised(wx.chooseMedia, {
    count: count,
    mediaType: ["image"],
    sizeType: ["compressed"],
    sourceType: ["album", "camera"],
  }).then(
    (res) => res.tempFiles || [],
    () => [],
  );
}

function megabytes(bytes) {
  return String(Math.round((bytes / 1024 / 1024) * 10) / 10);
}

// One chosen file made ready to send: { path, size, width, height }, or a rejection with a Chinese message.
function prepare(file, maxBytes) {
  const refuse = (message) => Promise.reject(new api.ApiError(0, "photo_refused", message));
  if (file.fileType && file.fileType !== "image") return refuse(WRONG_TYPE);
  return promised(wx.getImageInfo, { src: file.tempFilePath })
    .catch(() => Promise.reject(new api.ApiError(0, "photo_refused", "这张照片无法读取，请换一张。")))
    .then((info) => {
      if (ACCEPTED_TYPES.indexOf(String(info.type).toLowerCase()) < 0) return refuse(WRONG_TYPE);
      const longSide = Math.max(info.width, info.height);
      const scale = longSide > MAX_SIDE ? MAX_SIDE / longSide : 1;
      const width = Math.round(info.width * scale);
      const height = Math.round(info.height * scale);
      return promised(wx.compressImage, { src: file.tempFilePath, quality: QUALITY, compressedWidth: width })
        .then((res) => promised((o) => wx.getFileSystemManager().getFileInfo(o), { filePath: res.tempFilePath }).then((stat) => ({ path: res.tempFilePath, size: stat.size })))
        .then((shrunk) => {
          if (shrunk.size > maxBytes) {
            return refuse("照片压缩后仍超过 " + megabytes(maxBytes) + " MB，请换一张。");
          }
          return { path: shrunk.path, size: shrunk.size, width: width, height: height };
        });
    });
}

// Send the photos one after another; the number sent, or the first refusal (what was sent before it stays).
function send(ref, key, photos) {
  let sent = 0;
  return photos
    .reduce(
      (previous, photo) =>
        previous.then(() =>
          api
            .upload("messagePhoto", { params: { ref: ref }, query: { key: key }, filePath: photo.path, field: "photo" })
            .then(() => {
              sent += 1;
            }),
        ),
      Promise.resolve(),
    )
    .then(
      () => sent,
      (err) => {
        err.sent = sent;
        throw err;
      },
    );
}

module.exports = { MAX_SIDE: MAX_SIDE, choose: choose, prepare: prepare, send: send };
