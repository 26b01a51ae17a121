// The thread pane's message box. Text is posted as the user's reply in the thread; a slash
// command is sent too, and the playground answers it as Slack does in a thread (it does
// not reach the bot: "/starpod is not supported in threads. Sorry!").

/**
 * Wire the thread composer. ``context()`` gives {thread: {channel, ts} | null, user};
 * ``post(path, body)`` sends to the playground; ``fail(message)`` shows an error.
 */
export function setupThreadComposer({ context, post, fail }) {
  const form = document.getElementById("thread-composer");
  const input = document.getElementById("thread-input");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    const { thread, user } = context();
    if (!text || !thread) return;
    input.disabled = true;
    try {
      await post("/playground/command", { text, user, channel: thread.channel, thread_ts: thread.ts });
      input.value = "";
    } catch (error) {
      fail(error.message);
    } finally {
      input.disabled = false;
      input.focus();
    }
  });
}
