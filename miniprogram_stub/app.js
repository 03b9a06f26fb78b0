const config = require("./config.js");

App({
  globalData: {
    baseUrl: config.baseUrl(),
  },
});
