// Stops DynamoDB Local when the process that started it dies without cleaning up (SIGKILL, crash).
// Usage: node watchdog.mjs <parentPid> <childPid>. Exits as soon as either is gone.
const [parentPid, childPid] = process.argv.slice(2).map(Number);

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const timer = setInterval(() => {
  if (!alive(childPid)) process.exit(0);
  if (alive(parentPid)) return;
  clearInterval(timer);
  try {
    process.kill(childPid, 'SIGTERM');
  } catch {}
  // DynamoDB Local may ignore SIGTERM for a while: make sure.
  setTimeout(() => {
    try {
      process.kill(childPid, 'SIGKILL');
    } catch {}
    process.exit(0);
  }, 3000);
}, 500);
