// The sandbox's chat page: one Telegram user talking to the bot through the /_sandbox/ routes.
// Open /_sandbox/<token>/chat; ?user=<id>&name=<first name> picks who you are (default 1001, Alex), and
// ?lang=<language code> the language your Telegram app reports (default: the browser's). The header switches
// to a second person of the household (1002, Sam), to show /share; a t.me link of the bot sent as a message
// opens it as Telegram does: /start with its payload.
"use strict";

(() => {
  const POLL_MS = 500; // the chat is re-read this often: edits and pushes show up without a reload
  const TOAST_MS = 3500;
  // Telegram's HTML parse mode tags; anything else from the bot is shown as its text only.
  const ALLOWED_TAGS = new Set(
    ["B", "STRONG", "I", "EM", "U", "INS", "S", "STRIKE", "DEL", "CODE", "PRE", "A", "BLOCKQUOTE"],
  );

  const token = decodeURIComponent(location.pathname.split("/")[2] || "");
  const query = new URLSearchParams(location.search);
  const userId = Number.parseInt(query.get("user") || "1001", 10);
  const firstName = query.get("name") || "Alex";
  const languageCode = query.get("lang") || navigator.language || "en";
  const root = `/_sandbox/${encodeURIComponent(token)}`;
  const userRoot = `${root}/users/${userId}`;
  const PEOPLE = [[1001, "Alex"], [1002, "Sam"]]; // one household: the owner and whom they share a car with
  let botUsername = null;

  const $ = (id) => document.getElementById(id);
  const list = $("messages");
  const rendered = new Map(); // message_id -> {key, node}
  const seenAnswers = new Set();
  const pendingPresses = new Map(); // callback_query_id -> the pressed button
  let firstLoad = true;
  let polling = false;
  let pollAgain = false;
  let pollTimer = 0;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function call(path, body) {
    const options = body === undefined
      ? { cache: "no-store" }
      : {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...body, first_name: firstName, language_code: languageCode }),
      };
    const response = await fetch(path, options);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  // ----- safe rendering of the bot's HTML ---------------------------------------------------------------

  // A DOMParser document is inert (no scripts run, nothing loads); from it only text and fresh copies of
  // the allowed tags are taken, so no attribute or markup of the bot's text reaches the page as is.
  function copySafely(source, target) {
    for (const node of source.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        target.append(node.textContent);
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const link = node.tagName === "A";
        const href = link ? node.getAttribute("href") || "" : "";
        // Only web links stay links (tg:, javascript: and the like become their text).
        if (ALLOWED_TAGS.has(node.tagName) && (!link || /^https?:\/\//i.test(href))) {
          const copy = document.createElement(node.tagName.toLowerCase());
          if (link) {
            copy.href = href;
            copy.target = "_blank";
            copy.rel = "noopener noreferrer";
          }
          copySafely(node, copy);
          target.append(copy);
        } else {
          copySafely(node, target);
        }
      }
    }
  }

  function richText(text, parseMode) {
    const box = element("div", "text");
    if ((parseMode || "").toUpperCase() === "HTML") {
      copySafely(new DOMParser().parseFromString(text, "text/html").body, box);
    } else {
      box.textContent = text;
    }
    return box;
  }

  // ----- messages --------------------------------------------------------------------------------------

  function clock(epochSeconds) {
    return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function coordinates(location) {
    return `${location[0].toFixed(5)}, ${location[1].toFixed(5)}`;
  }

  function renderMessage(message) {
    const row = element("div", `msg ${message.from_bot ? "bot" : "user"}`);
    row.dataset.messageId = String(message.message_id);
    const bubble = element("div", "bubble");
    if (message.photo) {
      bubble.classList.add("has-photo");
      const image = element("img", "photo");
      image.alt = "photo";
      image.width = message.photo.width; // reserves the space: the chat does not jump when it loads
      image.height = message.photo.height;
      image.src = message.photo.url;
      bubble.append(image);
    }
    if (message.document) {
      const link = element("a", "document", `📄 ${message.document.file_name ?? "document"}`);
      link.href = message.document.url;
      link.download = message.document.file_name ?? "";
      bubble.append(link);
    }
    if (message.venue) {
      const venue = message.venue;
      bubble.append(element("div", "place", `📍 ${venue.title}\n${venue.address}\n${coordinates(message.location)}`));
    } else if (message.location) {
      bubble.append(element("div", "place", `📍 ${coordinates(message.location)}`));
    }
    if (message.sticker) bubble.append(element("div", "sticker", message.sticker));
    const body = message.text ?? message.caption;
    if (body !== null && body !== undefined) bubble.append(richText(body, message.parse_mode));
    const meta = element("div", "meta");
    if (message.edits) meta.append(element("span", "edited", "edited"));
    meta.append(clock(message.date));
    bubble.append(meta);
    row.append(bubble);
    if (message.buttons.length) row.append(keyboard(message));
    return row;
  }

  const BUTTON_STYLES = ["danger", "success", "primary"]; // Bot API 9.4 button styles

  function keyboard(message) {
    const box = element("div", "keyboard");
    for (const buttons of message.buttons) {
      const row = element("div", "row");
      for (const button of buttons) {
        if (button.callback_data !== null) {
          const key = element("button", "key", button.text);
          key.type = "button";
          if (BUTTON_STYLES.includes(button.style)) key.classList.add(`style-${button.style}`);
          key.addEventListener("click", () => press(message.message_id, button.callback_data, key));
          row.append(key);
        } else if (button.url && /^https?:\/\//i.test(button.url)) {
          const link = element("a", "key", button.text);
          link.href = button.url;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          row.append(link);
        } else if (button.copy_text !== null && button.copy_text !== undefined) {
          const key = element("button", "key", button.text);
          key.type = "button";
          key.addEventListener("click", () => copyText(button.copy_text));
          row.append(key);
        } else {
          row.append(element("span", "key", button.text));
        }
      }
      box.append(row);
    }
    return box;
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  }

  function keepAtBottom(force) {
    if (force || nearBottom()) list.scrollTop = list.scrollHeight;
  }

  function showChat(messages) {
    const follow = nearBottom();
    let previous = null;
    let grew = false;
    const visible = new Set();
    for (const message of messages) {
      if (message.deleted) continue; // a deleted message disappears, as in Telegram
      visible.add(message.message_id);
      const key = JSON.stringify(message);
      let entry = rendered.get(message.message_id);
      if (!entry || entry.key !== key) {
        const node = renderMessage(message);
        if (entry) entry.node.replaceWith(node); // an edit: same place, new content
        else grew = true;
        entry = { key, node };
        rendered.set(message.message_id, entry);
      }
      const expected = previous ? previous.nextSibling : list.firstChild;
      if (entry.node !== expected) list.insertBefore(entry.node, expected);
      previous = entry.node;
    }
    for (const [id, entry] of rendered) {
      if (!visible.has(id)) {
        entry.node.remove();
        rendered.delete(id);
      }
    }
    $("empty").hidden = rendered.size > 0;
    if (grew) keepAtBottom(follow || firstLoad);
  }

  function showAnswers(answers) {
    for (const answer of answers) {
      if (seenAnswers.has(answer.query_id)) continue;
      seenAnswers.add(answer.query_id);
      const button = pendingPresses.get(answer.query_id);
      if (button) button.classList.remove("pending");
      pendingPresses.delete(answer.query_id);
      if (!firstLoad && answer.text) toast(answer.text, answer.show_alert);
    }
  }

  // A CopyTextButton, as Telegram does it: the text goes to the clipboard and a toast says so (the toast
  // shows the text itself where the page may not write the clipboard).
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      toast("Copied to clipboard", false);
    } catch (error) {
      toast(text, true);
    }
  }

  function toast(text, alert) {
    const box = element("div", alert ? "toast alert" : "toast", text);
    box.setAttribute("role", alert ? "alertdialog" : "status");
    if (alert) {
      const ok = element("button", "primary", "OK");
      ok.type = "button";
      ok.addEventListener("click", () => box.remove());
      box.append(ok);
    } else {
      setTimeout(() => box.remove(), TOAST_MS);
    }
    $("toasts").append(box);
  }

  // ----- polling ---------------------------------------------------------------------------------------

  async function poll() {
    if (polling) {
      pollAgain = true;
      return;
    }
    polling = true;
    clearTimeout(pollTimer);
    try {
      const chat = await call(`${userRoot}/chat`);
      $("offline").hidden = true;
      showChat(chat.messages);
      showAnswers(chat.callback_answers);
      firstLoad = false;
    } catch {
      $("offline").hidden = false;
    } finally {
      polling = false;
      if (pollAgain) {
        pollAgain = false;
        poll();
      } else {
        pollTimer = setTimeout(poll, POLL_MS);
      }
    }
  }

  async function act(path, body) {
    try {
      const result = await call(path, body);
      poll();
      return result;
    } catch (error) {
      toast(`Not sent: ${error.message}`, false);
      return null;
    }
  }

  async function press(messageId, data, button) {
    button.classList.add("pending");
    const result = await act(`${userRoot}/press`, { message_id: messageId, data });
    if (result) pendingPresses.set(result.callback_query_id, button);
    else button.classList.remove("pending");
  }

  // ----- composer, menu, location ----------------------------------------------------------------------

  // The payload of a t.me link of this bot ("https://t.me/<bot>?start=<payload>"), else null.
  function deepLinkPayload(text) {
    const match = /^https:\/\/t\.me\/(\w+)\?start=([\w-]{1,64})$/.exec(text.trim());
    return match && match[1] === botUsername ? match[2] : null;
  }

  async function sendText(text) {
    const payload = deepLinkPayload(text);
    keepAtBottom(true);
    await act(`${userRoot}/messages`, { text: payload === null ? text : `/start ${payload}` });
    keepAtBottom(true);
  }

  function togglePanel(panel, button, open) {
    for (const [other, otherButton] of panels) {
      const show = other === panel ? open ?? other.hidden : false;
      other.hidden = !show;
      otherButton.setAttribute("aria-expanded", String(show));
    }
  }

  async function loadBot() {
    try {
      const bot = await call(`${root}/bot?language_code=${encodeURIComponent(languageCode)}`);
      $("bot-name").textContent = bot.first_name;
      $("bot-sub").textContent = `@${bot.username} · sandbox chat`;
      botUsername = bot.username;
      const commands = $("commands");
      commands.replaceChildren();
      for (const command of bot.commands) {
        const item = element("button", "command");
        item.type = "button";
        item.append(element("b", "", `/${command.command}`), element("span", "", command.description));
        item.addEventListener("click", () => {
          togglePanel($("menu-panel"), $("menu-button"), false);
          sendText(`/${command.command}`);
        });
        commands.append(item);
      }
      if (!bot.commands.length) commands.append(element("span", "", "The bot has not set its commands yet."));
    } catch {
      $("offline").hidden = false;
    }
  }

  const panels = [
    [$("menu-panel"), $("menu-button")],
    [$("location-form"), $("location-button")],
  ];

  $("me").textContent = `you: ${firstName} (${userId})`;
  const [otherId, otherName] = PEOPLE.find(([id]) => id !== userId);
  const other = new URLSearchParams(query);
  other.set("user", String(otherId));
  other.set("name", otherName);
  $("switch").href = `?${other}`;
  $("switch").textContent = `switch to ${otherName}`;
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    togglePanel(null, null, false);
    sendText(text);
  });
  $("menu-button").addEventListener("click", () => {
    loadBot(); // the bot sets its commands when it starts, maybe after this page was opened
    togglePanel($("menu-panel"), $("menu-button"));
  });
  $("location-button").addEventListener("click", () => togglePanel($("location-form"), $("location-button")));
  $("location-form").addEventListener("submit", (event) => {
    event.preventDefault();
    togglePanel(null, null, false);
    keepAtBottom(true);
    act(`${userRoot}/location`, { lat: Number($("lat").value), lon: Number($("lon").value) });
  });

  loadBot();
  poll();
})();
