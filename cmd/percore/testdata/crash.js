// Fails at boot, as an app with a bad config does.
console.log("starting up");
throw new Error("database URL is not set (boot failure for test)");
