"""What to do about each problem WorkSpaces lists in an ERROR image's ``ErrorDetails``.

The codes are botocore's WorkspaceImageErrorDetailCode values: most name one thing the
image's Windows must (or must not) have before WorkSpaces can build from it. ``HINTS`` says in
one sentence what to change for the common ones; ``detail_lines`` gives every detail a line,
with the hint when there is one and WorkSpaces' own message otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# One plain sentence each: what to change on the source image (a WorkSpace launched from it),
# before its image is created again. Codes whose meaning is not clear enough to advise on are
# left out on purpose: their line shows WorkSpaces' own message.
HINTS: dict[str, str] = {
    # Software that must not be on the image
    "AntiVirusInstalled": (
        "Uninstall the third-party antivirus software; install it on the WorkSpaces once "
        "they are built."
    ),
    "OfficeInstalled": (
        "Uninstall Microsoft Office; subscribe to Office through WorkSpaces if you need it."
    ),
    "PCoIPAgentInstalled": "Uninstall the PCoIP agent; WorkSpaces installs its own.",
    "VMWareToolsInstalled": "Uninstall VMware Tools.",
    "AmazonSsmAgentEnabled": "Stop the Amazon SSM Agent service and set it to Disabled.",
    "AppXPackagesInstalled": (
        "Remove the AppX packages installed for a single user (Remove-AppxPackage); they "
        "stop Sysprep."
    ),
    "StagedAppxPackage": (
        "Remove the staged AppX packages (Remove-AppxPackage -AllUsers); they stop Sysprep."
    ),
    # Windows settings
    "FirewallEnabled": "Turn Windows Defender Firewall off for every network profile.",
    "AutoLogonEnabled": (
        "Turn off automatic logon (AutoAdminLogon under HKLM\\SOFTWARE\\Microsoft\\Windows "
        "NT\\CurrentVersion\\Winlogon set to 0)."
    ),
    "AutoMountDisabled": (
        "Turn volume automount back on (`mountvol /E`, or `automount enable` in diskpart)."
    ),
    "RemoteDesktopServicesDisabled": (
        "Enable Remote Desktop and set the Remote Desktop Services service to start automatically."
    ),
    "WindowsModulesInstallerDisabled": (
        "Set the Windows Modules Installer service (TrustedInstaller) to Manual instead of "
        "Disabled."
    ),
    "RealTimeUniversalDisabled": (
        "Set RealTimeIsUniversal (DWORD, 1) under "
        "HKLM\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation."
    ),
    "OutdatedPowershellVersion": "Upgrade Windows PowerShell to version 4.0 or later.",
    "EnvironmentVariablesPathMissingEntries": (
        "Put the Windows system folders (%SystemRoot%\\system32, %SystemRoot%, "
        "%SystemRoot%\\System32\\Wbem, the WindowsPowerShell folder) back in the system PATH."
    ),
    "ReservedStorageInUse": (
        "Turn off Windows reserved storage (`DISM /Online /Set-ReservedStorageState "
        "/State:Disabled`)."
    ),
    # Windows Update and pending changes
    "WindowsUpdatesEnabled": "Disable the Windows Update service before the image is created.",
    "WindowsUpdatesRequired": "Install the pending Windows updates and restart, then try again.",
    "PendingReboot": "Restart Windows to finish the pending installs or updates, then try again.",
    # Sysprep and Windows activation
    "SysPrepFileMissing": (
        "Restore Sysprep (C:\\Windows\\System32\\Sysprep): WorkSpaces runs it to generalize "
        "the image."
    ),
    "ZeroRearmCount": (
        "Windows has no activation rearm left, so Sysprep cannot generalize it: build the "
        "image from a fresh Windows installation."
    ),
    "InsufficientRearmCount": (
        "Windows has too few activation rearms left for Sysprep: build the image from a fresh "
        "Windows installation."
    ),
    "InPlaceUpgrade": (
        "Windows was upgraded in place, which Sysprep refuses: build the image from a fresh "
        "installation of the new version."
    ),
    # Users and accounts
    "DomainJoined": (
        "Remove the machine from its Active Directory domain (join a workgroup); WorkSpaces "
        "joins its own directory."
    ),
    "AzureDomainJoined": "Leave Microsoft Entra ID (Azure AD): `dsregcmd /leave`.",
    "DomainAccountServicesFound": (
        "Make the services that run as domain accounts run as local or built-in accounts."
    ),
    "MultipleUserProfiles": (
        "Delete every user profile except the one the image is built from (System Properties, "
        "User Profiles)."
    ),
    # Disks
    "DiskFreeSpace": "Free up space on the C: drive (delete temporary files, old updates).",
    "InsufficientDiskSpace": "Free up space on the C: drive (delete temporary files, old updates).",
    "DiskSizeExceeded": "Shrink the system disk to the size WorkSpaces accepts for images.",
    "AdditionalDrivesAttached": "Detach every volume except C: from the machine.",
    "AdditionalDrivesPresent": "Remove every drive except C: from the machine.",
    "MultipleBootPartition": "Leave a single boot partition on the system disk.",
    # Network
    "DHCPDisabled": "Set the network adapter to get its IP address from DHCP.",
    # Operating system
    "OSNotSupported": "Use a Windows version that WorkSpaces supports for this kind of image.",
    "Requires64BitOS": "Use a 64-bit edition of Windows.",
    # The account
    "WorkspacesBYOLAccountNotFound": (
        "Enable Bring Your Own License for this account and region (WorkSpaces console, "
        "Account Settings) first."
    ),
    "WorkspacesBYOLAccountDisabled": (
        "Bring Your Own License is turned off for this account: turn it on again (WorkSpaces "
        "console, Account Settings) or ask AWS Support."
    ),
}

# A Slack section holds 3,000 characters; this leaves room for a heading line above the list.
LIMIT = 2800
# One AWS message on its own is cut at this length; its detail still gets its line.
MESSAGE_MAX = 400
NO_MESSAGE = "WorkSpaces gave no message."


def _same(text: str) -> str:
    return text


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def detail_line(code: str, message: str, quote: Callable[[str], str] = _same) -> str:
    """``CODE — hint`` for a code with a hint, ``CODE — WorkSpaces' message`` otherwise."""
    said = HINTS.get(code) or _one_line(message) or NO_MESSAGE
    return f"{quote(_one_line(code) or 'Unknown')} — {quote(said)}"


def detail_lines(
    details: Sequence[Sequence[str]],
    *,
    limit: int = LIMIT,
    quote: Callable[[str], str] = _same,
    bullet: str = "",
) -> list[str]:
    """One line per (code, message) detail, in WorkSpaces' order, no detail left out unless
    the lines joined would pass ``limit`` characters: the last line then says how many more
    there are. ``quote`` escapes AWS's text for where it is shown."""
    lines = [bullet + detail_line(str(code), str(message), quote) for code, message in details]
    more_room = len(f"{bullet}… and {len(lines)} more") + 1
    shown: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        cost = len(line) + (1 if shown else 0)
        last = index == len(lines) - 1
        if used + cost + (0 if last else more_room) > limit:
            break
        shown.append(line)
        used += cost
    if len(shown) < len(lines):
        shown.append(f"{bullet}… and {len(lines) - len(shown)} more")
    return shown
