/*
 * questline Hatched widget: one script tag, no build step.
 *
 *   <script src="https://<host>/api/v1/widget/embed.js" data-token="wgt_..." async></script>
 *
 * Renders the buddy (art, name, stage, coins), its badges and the marketplace into
 * a shadow root next to the script tag (or into data-target="#selector"). With an
 * interactive session (scopes marketplace:purchase / items:equip) it can buy and
 * equip. It stays current through the buddy's live stream (Server-Sent Events).
 * Everything from the server is written with textContent, never as HTML.
 */
(function () {
  "use strict";

  function findScript() {
    if (document.currentScript && document.currentScript.getAttribute("data-token")) {
      return document.currentScript;
    }
    var all = document.querySelectorAll('script[data-token][src*="/widget/embed.js"]');
    for (var i = 0; i < all.length; i++) {
      if (!all[i].__questlineMounted) return all[i];
    }
    return null;
  }

  var script = findScript();
  if (!script || script.__questlineMounted) return;
  script.__questlineMounted = true;

  var token = script.getAttribute("data-token");
  var apiBase = new URL(script.src, document.baseURI).origin + "/api/v1";

  // -- DOM helpers ---------------------------------------------------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  var host;
  var targetSel = script.getAttribute("data-target");
  if (targetSel && document.querySelector(targetSel)) {
    host = document.querySelector(targetSel);
  } else {
    host = document.createElement("div");
    script.parentNode.insertBefore(host, script.nextSibling);
  }
  host.classList.add("questline-widget-host");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = apiBase + "/widget/embed.css";
  root.appendChild(css);

  var frame = el("div", "ql-widget");
  frame.setAttribute("data-state", "loading");
  root.appendChild(frame);

  var header = el("div", "ql-header");
  var art = el("div", "ql-buddy-art");
  var artImg = el("img");
  artImg.alt = "Buddy";
  art.appendChild(artImg);
  var info = el("div", "ql-info");
  var nameEl = el("div", "ql-name", "Loading…");
  var stageEl = el("div", "ql-stage");
  var coinsEl = el("div", "ql-coins");
  var liveEl = el("div", "ql-live", "connecting");
  info.appendChild(nameEl);
  info.appendChild(stageEl);
  info.appendChild(coinsEl);
  info.appendChild(liveEl);
  header.appendChild(art);
  header.appendChild(info);

  var messageEl = el("div", "ql-message");
  messageEl.setAttribute("role", "status");
  var badgesSection = el("section", "ql-badges");
  var ownedSection = el("section", "ql-owned");
  var marketSection = el("section", "ql-market");
  frame.appendChild(header);
  frame.appendChild(messageEl);
  frame.appendChild(badgesSection);
  frame.appendChild(ownedSection);
  frame.appendChild(marketSection);

  // -- API -------------------------------------------------------------------------------------
  function api(path, options) {
    options = options || {};
    var headers = { Authorization: "Bearer " + token };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(apiBase + path, {
      method: options.method || "GET",
      headers: headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = text ? JSON.parse(text) : null;
        if (!response.ok) {
          var error = (data && data.error) || { code: "http_" + response.status, message: response.statusText };
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function randomKey() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return "wgt_" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // -- state -------------------------------------------------------------------------------------
  var state = { buddy: null, items: [], badges: null, market: null, scopes: [], ended: false };

  function can(scope) {
    return state.scopes.indexOf(scope) >= 0;
  }

  function say(text, kind) {
    messageEl.textContent = text || "";
    messageEl.setAttribute("data-kind", kind || "info");
  }

  function applyTheme(theme) {
    var s = frame.style;
    s.setProperty("--ql-primary", theme.primary_color);
    s.setProperty("--ql-bg", theme.background_color);
    s.setProperty("--ql-text", theme.text_color);
    s.setProperty("--ql-accent", theme.accent_color);
    s.setProperty("--ql-radius", theme.border_radius + "px");
    s.setProperty("--ql-font", theme.font_family);
    frame.setAttribute("data-mode", theme.mode);
    frame.setAttribute("data-size", theme.size);
    Object.keys(theme.theme_config || {}).forEach(function (key) {
      var value = theme.theme_config[key];
      if (value) frame.setAttribute("data-" + key.replace(/_/g, "-"), value);
    });
    if (theme.custom_css) {
      // Sanitised server-side (no @import, url() or script); scoped to this shadow root.
      var style = document.createElement("style");
      style.textContent = theme.custom_css;
      root.appendChild(style);
    }
  }

  function renderBuddy() {
    var b = state.buddy;
    if (!b) return;
    nameEl.textContent = b.name;
    stageEl.textContent = "Stage " + b.evolution_stage;
    stageEl.setAttribute("data-stage", b.evolution_stage);
    coinsEl.textContent = b.coins + " coins";
    coinsEl.setAttribute("data-coins", b.coins);
    // The art follows the state; updated_at busts the cache after an equip or evolve.
    artImg.src = apiBase + "/widget/art.svg?token=" + encodeURIComponent(token) +
      "&v=" + encodeURIComponent(b.updated_at);
  }

  function renderBadges() {
    clear(badgesSection);
    if (!state.badges) return;
    badgesSection.appendChild(el("h3", null, "Badges"));
    var list = el("ul", "ql-badge-list");
    state.badges.forEach(function (badge) {
      var li = el("li", "ql-badge" + (badge.earned === false ? " ql-locked" : ""), badge.name);
      li.setAttribute("data-badge-key", badge.badge_key);
      li.title = badge.description || badge.name;
      list.appendChild(li);
    });
    if (!state.badges.length) list.appendChild(el("li", "ql-empty", "No badges yet"));
    badgesSection.appendChild(list);
  }

  function renderOwned() {
    clear(ownedSection);
    if (!state.items.length) return;
    ownedSection.appendChild(el("h3", null, "Owned"));
    var list = el("ul", "ql-owned-list");
    var worn = (state.buddy && state.buddy.equipped_items) || [];
    state.items.forEach(function (item) {
      var li = el("li", "ql-owned-item");
      li.setAttribute("data-item-id", item.item_id);
      li.appendChild(el("span", "ql-item-name", item.name));
      var wearing = worn.indexOf(item.item_id) >= 0;
      li.setAttribute("data-equipped", wearing ? "true" : "false");
      if (item.slot && can("items:equip")) {
        var button = el("button", "ql-equip", wearing ? "Unequip" : "Equip");
        button.type = "button";
        button.addEventListener("click", function () { equip(item.item_id, !wearing, button); });
        li.appendChild(button);
      } else if (wearing) {
        li.appendChild(el("span", "ql-tag", "worn"));
      }
      list.appendChild(li);
    });
    ownedSection.appendChild(list);
  }

  function renderMarket() {
    clear(marketSection);
    var shop = state.market;
    if (!shop) return;
    marketSection.appendChild(el("h3", null, shop.marketplace ? shop.marketplace.name : "Marketplace"));
    var list = el("ul", "ql-market-list");
    shop.items.forEach(function (item) {
      var e = item.eligibility || {};
      var li = el("li", "ql-item");
      li.setAttribute("data-item-id", item.item_id);
      li.setAttribute("data-owned", e.owned ? "true" : "false");
      var img = el("img", "ql-item-art");
      img.alt = item.name;
      img.src = apiBase + item.widget_image_url.replace(/^\/api\/v1/, "") + "?token=" + encodeURIComponent(token);
      li.appendChild(img);
      li.appendChild(el("span", "ql-item-name", item.name));
      li.appendChild(el("span", "ql-price", item.price + " coins"));
      if (e.owned) {
        li.appendChild(el("span", "ql-tag ql-owned-tag", "Owned"));
      } else if (can("marketplace:purchase")) {
        var button = el("button", "ql-buy", "Buy");
        button.type = "button";
        button.disabled = !e.purchasable;
        if (!e.purchasable && e.refusal) button.title = e.refusal.replace(/_/g, " ");
        button.addEventListener("click", function () { purchase(item, button); });
        li.appendChild(button);
      }
      list.appendChild(li);
    });
    if (!shop.items.length) list.appendChild(el("li", "ql-empty", "Nothing for sale yet"));
    marketSection.appendChild(list);
  }

  function render() {
    renderBuddy();
    renderBadges();
    renderOwned();
    renderMarket();
  }

  // -- loading ------------------------------------------------------------------------------------
  function loadState() {
    return api("/widget/state").then(function (s) {
      state.buddy = s.buddy;
      state.items = s.items;
      state.scopes = s.session.scopes;
      frame.setAttribute("data-interactive", s.session.interactive ? "true" : "false");
    });
  }

  function loadBadges() {
    if (!can("badges:read")) return Promise.resolve();
    return api("/widget/badges").then(function (b) { state.badges = b.data; });
  }

  function loadMarket() {
    if (!can("marketplace:read")) return Promise.resolve();
    return api("/widget/marketplace").then(function (shop) {
      state.market = shop;
    }, function (error) {
      if (error.code === "marketplace_not_found") { state.market = null; return; }
      throw error;
    });
  }

  var refreshing = null;
  var refreshAgain = false;

  function refresh() {
    // One refresh at a time; a change during a refresh triggers exactly one more.
    if (state.ended) return Promise.resolve();
    if (refreshing) { refreshAgain = true; return refreshing; }
    refreshing = loadState().then(function () {
      return Promise.all([loadBadges(), loadMarket()]);
    }).then(function () {
      if (state.ended) return;  // the session ended while this refresh was in flight
      render();
      frame.setAttribute("data-state", "ready");
    }).catch(fail).then(function () {
      refreshing = null;
      if (refreshAgain) { refreshAgain = false; refresh(); }
    });
    return refreshing;
  }

  function fail(error) {
    if (error && (error.code === "widget_session_revoked" || error.code === "widget_session_expired")) {
      end(error.code === "widget_session_revoked" ? "revoked" : "expired");
      return;
    }
    say((error && error.message) || "Something went wrong.", "error");
  }

  function end(reason) {
    state.ended = true;
    if (source) source.close();
    liveEl.textContent = "ended";
    frame.setAttribute("data-state", "ended");
    say(reason === "revoked" ? "This widget session was ended." : "This widget session has expired.", "error");
    var buttons = root.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
  }

  // -- actions -----------------------------------------------------------------------------------
  function purchase(item, button) {
    button.disabled = true;
    button.textContent = "Buying…";
    say("");
    api("/widget/purchase", { method: "POST", body: { item_id: item.item_id, idempotency_key: randomKey() } })
      .then(function (result) {
        state.buddy.coins = result.coins;
        renderBuddy();
        say("Bought " + item.name + "!", "success");
        return refresh();
      }, function (error) {
        button.disabled = false;
        button.textContent = "Buy";
        fail(error);
      });
  }

  function equip(itemId, on, button) {
    button.disabled = true;
    button.textContent = "Processing…";
    var body = on ? { equip: [itemId] } : { unequip: [itemId] };
    api("/widget/equip", { method: "POST", body: body }).then(function (op) {
      return waitOperation(op.operation_id);
    }).then(function (op) {
      if (op.status === "completed") say(on ? "Equipped!" : "Unequipped.", "success");
      else say((op.error && op.error.message) || "The equip did not go through.", "error");
      return refresh();
    }).catch(function (error) {
      button.disabled = false;
      fail(error);
    });
  }

  function waitOperation(id) {
    return new Promise(function (resolve, reject) {
      function poll() {
        api("/widget/operations/" + encodeURIComponent(id)).then(function (op) {
          if (op.status === "completed" || op.status === "failed" || op.status === "cancelled") resolve(op);
          else setTimeout(poll, 400);
        }, reject);
      }
      poll();
    });
  }

  // -- live updates --------------------------------------------------------------------------------
  var source = null;

  function connect() {
    if (!window.EventSource) { liveEl.textContent = "polling"; return; }
    source = new EventSource(apiBase + "/widget/stream?token=" + encodeURIComponent(token));
    source.addEventListener("open", function () {
      liveEl.textContent = "live";
      liveEl.setAttribute("data-live", "true");
    });
    source.addEventListener("buddy", function (event) {
      state.buddy = JSON.parse(event.data);
      renderBuddy();
      refresh();  // ownership, eligibility and badges follow the new state
    });
    source.addEventListener("reset", function () { refresh(); });
    source.addEventListener("session_ended", function (event) {
      end(JSON.parse(event.data).reason);
    });
    source.addEventListener("error", function () {
      liveEl.setAttribute("data-live", "false");
      if (state.ended) return;
      liveEl.textContent = "reconnecting";
      // A refused reconnect (revoked/expired token) closes the EventSource for good: find out why.
      if (source.readyState === EventSource.CLOSED) api("/widget/buddy").catch(fail);
    });
  }

  api("/widget/theme").then(applyTheme, function () { /* defaults from the stylesheet */ });
  refresh().then(function () { if (!state.ended) connect(); });
})();
