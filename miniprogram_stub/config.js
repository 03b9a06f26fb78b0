// Where the backend is. In development the local backend (`make run`) with its WeChat sandbox; a release
// build points at the county's HTTPS domain, which must be a 合法域名 in the mini-program's console.
module.exports = {
  baseUrl: "http://127.0.0.1:5000",
};
