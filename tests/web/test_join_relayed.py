"""The join page through TURN (issue 15, item 8): Chromium may use relay candidates only, with the
credentials its ``joined`` carried; the call goes through a local coturn and the room's picture
arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.bot import BLUE
from harness.turn import TurnServer
from harness.waiting import until
from tests.web.pictures import colour_share
from vdx.conference.policy import RoomConfig
from vdx.settings import Settings

from .conftest import new_page, running_node, wait_for
from .test_join import join, portal_link

# every peer connection of the page relays (what a network that lets only TURN out leaves)
RELAY_ONLY = """(() => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) { super(Object.assign({}, config, {iceTransportPolicy: "relay"}), ...rest); }
  };
})();"""

SELECTED_PAIR = """async () => {
  const pc = window.vdxCall.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach(r => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair || pair.state !== "succeeded") return null;
  return {local: stats.get(pair.localCandidateId).candidateType, sent: pair.bytesSent, received: pair.bytesReceived};
}"""

# share of the room's picture, as the page decoded it, in the bot's blue
BLUE_SHARE = colour_share("blue")


async def test_the_join_page_relays_through_coturn_with_its_own_credentials(
    settings_factory: Callable[..., Settings], browser: Any, turn: TurnServer
) -> None:
    async with running_node(settings_factory, turn_servers=turn.url, turn_secret=turn.secret) as web:
        alias = "55550040@vdx.test"
        web.rooms.put(RoomConfig(alias=alias, host_view="four_mains_zero_pips", enable_overlay_text=False))
        bot = await web.joined_bot(alias, "Bot", colour=BLUE)

        page = await new_page(browser)
        await page.add_init_script(RELAY_ONLY)
        await join(page, portal_link(web, alias), "Anna")
        pid = await page.evaluate("window.vdxCall.participantId")
        config = await page.evaluate("window.vdxCall.pc.getConfiguration()")
        assert config["iceTransportPolicy"] == "relay"
        [server] = config["iceServers"]
        assert server["urls"] == [turn.url] and server["username"].endswith(f":{pid}")

        async def media_both_ways() -> dict[str, Any] | None:
            pair: dict[str, Any] | None = await page.evaluate(SELECTED_PAIR)
            return pair if pair and pair["sent"] > 0 and pair["received"] > 0 else None

        pair = await until(media_both_ways, 20, "a pair carrying media both ways")
        assert pair["local"] == "relay"
        share = await wait_for(page, f"({BLUE_SHARE})() > 0.1 && ({BLUE_SHARE})()", "the bot's blue decoded")
        assert share > 0.1
        await bot.until(lambda: bot.video_frames > 10, 20, "the bot sees the room")
        assert f"user <{server['username']}>: incoming packet ALLOCATE processed, success" in turn.log()
